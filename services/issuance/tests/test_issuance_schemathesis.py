"""Schemathesis with every check over the issuance service's own OpenAPI document.

The worker runs as a real process on the real broker and store (the module's own stack: own
consumer group and database). The production centre's callbacks carry an HMAC signature
schemathesis cannot make, so for them it checks the refusals (401, and 400/422 for a bad body).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from issuance_harness import IssuanceStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_the_api_answers_as_its_document_says(
    issuance_stack: IssuanceStack, openapi_conformance: ModuleType, tmp_path: Path
) -> None:
    conformance = openapi_conformance.Conformance(token="dev-ops")
    tested = await openapi_conformance.assert_conforms(issuance_stack.url, conformance, tmp_path)
    assert tested == 7
