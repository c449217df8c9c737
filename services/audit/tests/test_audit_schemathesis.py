"""Schemathesis with every check over the audit service's own OpenAPI document.

The service runs as a real process on the real broker and store, with its own audit topic,
consumer group and database (audit_harness).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from audit_harness import AuditService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_the_api_answers_as_its_document_says(
    audit_service: AuditService, openapi_conformance: ModuleType, tmp_path: Path
) -> None:
    conformance = openapi_conformance.Conformance(token="dev-ops")
    tested = await openapi_conformance.assert_conforms(audit_service.url, conformance, tmp_path)
    assert tested == 5
