"""Cross-service fixtures: the whole system as real processes, on the real broker and store.

One system per test session (starting it takes seconds): the end-to-end journeys run first, the
fault tests, which kill and restart parts of it, after them. It listens on ports 81xx so a
developer's own `./permits run` on 80xx is left alone, uses its own databases and consumer
groups, and starts from an empty broker so earlier tests' events cannot leak into its journeys
(`PERMITS_E2E_RESET_TOPICS=0` keeps the topics, for a broker other work is using at the time).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.journeys import Clients
from tests.system import build_system, clients_of, stack_module

# First matching marker wins: the console's browser tests (also `e2e`) run last: after the
# journeys, whose calendar checks expect next year still provisional, and after the faults,
# since Playwright's sync driver leaves its event loop set for the rest of the session.
ORDER = {"browser": 2, "faults": 1, "e2e": 0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Journeys before faults, whatever order the files are collected in."""
    items.sort(
        key=lambda item: next(
            (rank for marker, rank in ORDER.items() if item.get_closest_marker(marker)), -1
        )
    )


@pytest.fixture(scope="session")
def system(infrastructure: dict[str, str]) -> Iterator[Any]:
    """The four services, the console, the production centre, SMS gateway and mail sink."""
    reset = os.environ.get("PERMITS_E2E_RESET_TOPICS", "1") == "1"
    if reset:
        stack_module.reset_topics()
    # On a broker that keeps other work's history, replaying it from the earliest offset keeps
    # issuance busy for many minutes before it reaches this session's applications.
    stack = build_system(
        infrastructure,
        port_offset=int(os.environ.get("PERMITS_E2E_PORT_OFFSET", "100")),
        offset_reset="earliest" if reset else "latest",
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def clients(system: Any) -> AsyncIterator[Clients]:
    """HTTP clients of every part of the running system."""
    made = clients_of(system)
    try:
        yield made
    finally:
        await made.close()
