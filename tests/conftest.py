"""Cross-service fixtures: the whole system as real processes, on the real broker and store.

One system per test session (starting it takes seconds): the end-to-end journeys run first, the
fault tests, which kill and restart parts of it, after them. It listens on ports 81xx so a
developer's own `./permits run` on 80xx is left alone, uses its own databases and consumer
groups, and starts from an empty broker so earlier tests' events cannot leak into its journeys
(`PERMITS_E2E_RESET_TOPICS=0` keeps the topics, for a broker other work is using at the time).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.journeys import Clients

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "issuance", "rights", "notify")
ORDER = {"e2e": 0, "faults": 1}


def _load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("permits_stack", REPO / "deploy/local/stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stack_module = _load_stack()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Journeys before faults, whatever order the files are collected in."""
    items.sort(
        key=lambda item: next(
            (rank for marker, rank in ORDER.items() if item.get_closest_marker(marker)), -1
        )
    )


@pytest.fixture(scope="session")
def system(infrastructure: dict[str, str]) -> Iterator[Any]:
    """The four services, the production centre, SMS gateway and mail sink, all running."""
    run = uuid.uuid4().hex[:8]
    if os.environ.get("PERMITS_E2E_RESET_TOPICS", "1") == "1":
        stack_module.reset_topics()
    component_env = {
        name: {
            "PERMITS_MONGO_DATABASE": f"e2e_{run}_{name}",
            f"PERMITS_{name.upper()}_GROUP": f"e2e-{run}-{name}",
        }
        for name in SERVICES
    }
    stack = stack_module.Stack(
        ports=stack_module.Ports.shifted(100),
        extra_env={
            **infrastructure,
            "PERMITS_ENV": "development",
            "PERMITS_PRODUCTION_SIMULATOR_DELAY_SECONDS": "0.2",
            "PERMITS_PRODUCTION_CALLBACK_TIMEOUT_SECONDS": "20",
            "PERMITS_VERIFY_RATE_PER_SECOND": "100000",
            "PERMITS_VERIFY_BURST": "100000",
            "PERMITS_QUIET_HOURS_START": "00:00",
            "PERMITS_QUIET_HOURS_END": "00:00",
            "PERMITS_SMS_PER_RECIPIENT_PER_HOUR": "1000",
        },
        component_env=component_env,
        log_dir=REPO / ".local" / "logs" / f"e2e-{run}",
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def clients(system: Any) -> AsyncIterator[Clients]:
    """HTTP clients of every part of the running system."""

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=system.url(name), timeout=30)

    made = Clients(
        intake=client("intake"),
        issuance=client("issuance"),
        rights=client("rights"),
        notify=client("notify"),
        sms=client("sms-gateway"),
        mail=client("smtp"),
    )
    try:
        yield made
    finally:
        await made.close()
