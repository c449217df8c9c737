"""Fixtures of the intake tests: one running intake per session, shared by API tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from intake_harness import RunningIntake, intake_settings, running_intake


@pytest.fixture(scope="session")
async def intake(infrastructure: dict[str, str]) -> AsyncIterator[RunningIntake]:
    """The real app on the real broker and store (own database and consumer group)."""
    async with running_intake(intake_settings(infrastructure)) as running:
        yield running
