"""Schemathesis with every check over the rights service's own OpenAPI document.

The service runs as a real process on the real broker and store, with its own consumer group
(starting at the end of the card topic), database and audit topic (the generated card numbers
of the verifications it audits stay out of the shared trail); agencies verify, operators read.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from permits_common.events.topics import TopicSpec
from permits_common.kafka import ensure_topics
from permits_common.mongo import mongo_client
from permits_common.settings import CommonSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AGENCY_ONLY = {("GET", "/api/v1/verify"): "dev-agency-hotel"}


async def test_the_api_answers_as_its_document_says(
    infrastructure: dict[str, str], openapi_conformance: ModuleType, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    port = openapi_conformance.free_port()
    settings = CommonSettings(
        audit_topic=f"permits.audit.test-{tag}",
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        mongo_url=infrastructure["PERMITS_MONGO_URL"],
    )
    database = f"permits_test_{tag}"
    await ensure_topics(settings, [TopicSpec(settings.audit_topic, "subject", "test", 1)])
    env = {
        **os.environ,
        **infrastructure,
        "PERMITS_ENV": "test",
        "PERMITS_RIGHTS_GROUP": f"permits-rights-openapi-{tag}",
        "PERMITS_RIGHTS_OFFSET_RESET": "latest",
        "PERMITS_MONGO_DATABASE": database,
        "PERMITS_AUDIT_TOPIC": settings.audit_topic,
        "PERMITS_RIGHTS_PORT": str(port),
        "PERMITS_LOG_LEVEL": "WARNING",
    }
    conformance = openapi_conformance.Conformance(token="dev-ops", tokens=AGENCY_ONLY)
    async with openapi_conformance.service_process(
        "permits_rights", env, port, tmp_path / "rights.log"
    ) as url:
        tested = await openapi_conformance.assert_conforms(url, conformance, tmp_path)
    assert tested == 9
    cleaner = mongo_client(settings)
    try:
        await cleaner.drop_database(database)
    finally:
        await cleaner.close()
