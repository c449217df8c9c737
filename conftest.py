"""Test harness shared by every test folder: default markers and the real local infrastructure.

Integration, e2e and fault tests get Kafka and the document store from the project's own
`deploy/local/infra.py` (or from `PERMITS_KAFKA_BOOTSTRAP` / `PERMITS_MONGO_URL`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent
_IO_MARKERS = {"integration", "e2e", "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests without an I/O marker are unit tests."""
    for item in items:
        if not _IO_MARKERS.intersection(m.name for m in item.iter_markers()):
            item.add_marker(pytest.mark.unit)


def load_infra() -> ModuleType:
    """The local infrastructure tool, imported from its path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("permits_infra", REPO / "deploy/local/infra.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[dict[str, str]]:
    """Real Kafka and the real store, started once per test session and left as found."""
    infra = load_infra()
    started = infra.up("all")
    yield {
        "PERMITS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap(),
        "PERMITS_MONGO_URL": infra.mongo_url(),
    }
    if os.environ.get("PERMITS_KEEP_INFRA") != "1":
        for name in reversed(started):
            infra.down(name)


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests sharing the broker and store never see each other's data."""
    return uuid.uuid4().hex[:10]
