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
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent
_IO_MARKERS = {"integration", "e2e", "faults"}
_DEV_SNAPSHOT = pytest.StashKey[dict[str, Any]]()


def _tests_module(name: str) -> ModuleType:
    """A helper module of `tests/`, loaded from its path: a service's own `tests` folder may be
    what `tests` names when only that service's tests run."""
    spec = importlib.util.spec_from_file_location(f"permits_{name}", REPO / "tests" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _dev_stack_guard() -> ModuleType:
    return _tests_module("dev_stack_guard")


def _guards_dev_stack() -> bool:
    """True when this session uses its own infrastructure, so the usual one must stay as it is."""
    guard = _dev_stack_guard()
    infra = load_infra()
    return bool(infra.kafka_bootstrap() != guard.DEV_KAFKA and infra.mongo_url() != guard.DEV_STORE)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Snapshot a developer's running system (if any) before the suite touches anything."""
    if _guards_dev_stack():
        session.config.stash[_DEV_SNAPSHOT] = _dev_stack_guard().snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the suite changed a developer's running system."""
    before = session.config.stash.get(_DEV_SNAPSHOT, None)
    if before is None:
        return
    guard = _dev_stack_guard()
    changed = guard.differences(before, guard.snapshot())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if changed:
        # Locally a developer may be using that system while the suite runs; CI, which starts
        # one only to watch it, sets PERMITS_DEV_STACK_GUARD=fail.
        if reporter is not None:
            reporter.write_line("the development system changed during the suite:", red=True)
            for line in changed[:50]:
                reporter.write_line(f"  {line}", red=True)
        if os.environ.get("PERMITS_DEV_STACK_GUARD") == "fail":
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and (before["kafka"] is not None or before["store"] is not None):
        reporter.write_line(
            "development system on the usual ports left as it was "
            f"({len(before['kafka'] or {})} topic partitions, "
            f"{len(before['store'] or {})} collections)"
        )


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


@pytest.fixture
def infra_tool() -> ModuleType:
    """The local infrastructure tool itself, for tests of its settings and flags."""
    return load_infra()


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


@pytest.fixture(scope="session")
def openapi_conformance() -> ModuleType:
    """`tests/openapi_conformance.py`: schemathesis with every check against a running service."""
    return _tests_module("openapi_conformance")


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests sharing the broker and store never see each other's data."""
    return uuid.uuid4().hex[:10]
