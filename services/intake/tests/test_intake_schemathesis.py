"""Schemathesis with every check over the intake's own OpenAPI document.

The running app (real Kafka and store) is served by uvicorn on an ephemeral port inside the
test's event loop. Loading a calendar year and moving the dev clock are left out: they would
change state shared with the other intake tests (and, for the calendar, with other services on
the shared broker); both have their own tests.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from intake_harness import RunningIntake

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OPS_ONLY = (
    ("POST", "/api/v1/applications/{application_id}/extension"),
    ("POST", "/api/v1/cards/{card_number}/revoke"),
    ("GET", "/api/v1/overview"),
    ("POST", "/api/v1/calendar/{year}/preview"),
    ("GET", "/api/v1/dead-letters"),
)


async def test_the_api_answers_as_its_document_says(
    intake: RunningIntake, openapi_conformance: ModuleType, tmp_path: Path
) -> None:
    conformance = openapi_conformance.Conformance(
        token="dev-clerk",
        tokens=dict.fromkeys(OPS_ONLY, "dev-ops"),
        excluded=[("PUT", "/api/v1/calendar/{year}"), ("PUT", "/api/v1/dev/clock")],
        rules=[("POST", "/api/v1/applications"), ("POST", "/api/v1/calendar/{year}/preview")],
    )
    async with openapi_conformance.served(intake.app) as base_url:
        tested = await openapi_conformance.assert_conforms(base_url, conformance, tmp_path)
    assert tested == 18
