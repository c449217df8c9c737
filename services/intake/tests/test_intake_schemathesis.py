"""Schemathesis over the intake's own OpenAPI document: no input makes it answer 5xx.

The app is served by uvicorn on an ephemeral port inside the test's event loop; the generated
requests are sent from a worker thread. Loading a calendar year and moving the dev clock are
left out: they would change state shared with other tests (and, for the calendar, with other
services on the shared broker); both have their own tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from intake_harness import RunningIntake
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

EXCLUDED = {("PUT", "/api/v1/calendar/{year}"), ("PUT", "/api/v1/dev/clock")}
OPS_ONLY = {("POST", "/api/v1/cards/{card_number}/revoke")}


@contextlib.asynccontextmanager
async def served(intake: RunningIntake) -> AsyncIterator[str]:
    """Serve the already running app over real HTTP on an ephemeral port."""
    config = uvicorn.Config(intake.app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def fuzz(base_url: str) -> list[str]:
    """Run a few generated cases per operation; returns the operations that were exercised."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    exercised: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"invalid operation in the OpenAPI document: {result}")
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED:
            continue
        token = "dev-ops" if key in OPS_ONLY else "dev-clerk"
        fuzz_operation(operation, base_url, {"Authorization": f"Bearer {token}"})
        exercised.append(f"{key[0]} {key[1]}")
    return exercised


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    """Hypothesis-generated requests against one operation, each checked for a 5xx."""

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    run()


async def test_no_input_makes_the_api_fail(intake: RunningIntake) -> None:
    async with served(intake) as base_url:
        exercised = await asyncio.to_thread(fuzz, base_url)
    assert "POST /api/v1/applications" in exercised
    assert "GET /api/v1/applications/{application_id}/status" in exercised
