"""Fixtures of the audit service's tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_harness import audit_service, trail

__all__ = ["audit_service", "trail"]
