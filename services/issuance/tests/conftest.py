"""Makes the issuance test helpers (issuance_harness) importable by name, and shares its fixture."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from issuance_harness import issuance_stack

__all__ = ["issuance_stack"]
