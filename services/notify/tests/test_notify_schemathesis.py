"""Schemathesis with every check over the notify service's own OpenAPI document.

The worker runs as a real process on the real broker and store with its own consumer group and
database, sending to a real local SMS gateway and mail sink (notify_harness).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from notify_harness import running_notify

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_the_api_answers_as_its_document_says(
    infrastructure: dict[str, str], openapi_conformance: ModuleType, tmp_path: Path
) -> None:
    conformance = openapi_conformance.Conformance(token="dev-ops")
    async with running_notify(infrastructure, tmp_path) as notify:
        tested = await openapi_conformance.assert_conforms(notify.base_url, conformance, tmp_path)
    assert tested == 5
