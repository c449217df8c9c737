"""The services publish the trail: a clerk's read (intake), a holder status handed to an
agency's feed and a verification answer (rights) each appear in the audit service's trail."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from audit_harness import AuditService, free_port

from permits_common.domain import permit_number
from permits_common.domain.card import ApplicationKind, valid_until
from permits_common.domain.regions import Region, Sex
from permits_common.events.models import CardIssued
from permits_common.kafka import EventPublisher
from permits_intake.domain.examples import application_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@asynccontextmanager
async def running(module: str, port: int, env: Mapping[str, str], log: Path) -> AsyncIterator[str]:
    """One service as a real process until the block ends."""
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert process.poll() is None, f"{module} exited; see {log}"
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


async def trail_of(audit: AuditService, subject: str, actions: set[str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(150):
        items = (await audit.get("/api/v1/audit", subject=subject))["items"]
        if actions <= {item["action"] for item in items}:
            return items
        await asyncio.sleep(0.2)
    raise AssertionError(f"actions {actions} not in the trail of {subject}: {items}")


async def test_a_clerk_read_is_in_the_trail(audit_service: AuditService, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:10]
    port = free_port()
    env = {
        **audit_service.infrastructure,
        "PERMITS_AUDIT_TOPIC": audit_service.settings.audit_topic,
        "PERMITS_INTAKE_PORT": str(port),
        "PERMITS_MONGO_DATABASE": f"intake_audit_{uid}",
        "PERMITS_INTAKE_GROUP": f"intake-audit-{uid}",
        "PERMITS_INTAKE_OFFSET_RESET": "latest",
    }
    body = application_body()
    body["applicant"]["travel_permit_number"] = f"H{uuid.uuid4().int % 10**8:08d}"
    clerk = httpx.AsyncClient(headers={"Authorization": "Bearer dev-clerk"})
    async with running("permits_intake", port, env, tmp_path / "intake.log") as url, clerk:
        created = await clerk.post(
            f"{url}/api/v1/applications", json=body, headers={"Idempotency-Key": uid}
        )
        assert created.status_code == 201, created.text
        application_id = created.json()["id"]
        read = await clerk.get(f"{url}/api/v1/applications/{application_id}")
        assert read.status_code == 200
    actions = {"application.submit", "application.read"}
    items = await trail_of(audit_service, application_id, actions)
    read_entry = next(item for item in items if item["action"] == "application.read")
    assert read_entry["actor"]["role"] == "clerk"
    assert read_entry["actor"]["id"].startswith("tok-")
    assert "dev-clerk" not in str(items)
    assert read_entry["point"] == body["acceptance_point"]
    assert read_entry["service"] == "intake"
    assert read_entry["outcome"] == "found"


async def test_a_feed_delivery_and_a_verification_are_in_the_trail(
    audit_service: AuditService, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:10]
    port = free_port()
    env = {
        **audit_service.infrastructure,
        "PERMITS_AUDIT_TOPIC": audit_service.settings.audit_topic,
        "PERMITS_RIGHTS_PORT": str(port),
        "PERMITS_MONGO_DATABASE": f"rights_audit_{uid}",
        "PERMITS_RIGHTS_GROUP": f"rights-audit-{uid}",
        "PERMITS_RIGHTS_OFFSET_RESET": "latest",
        "PERMITS_LOG_LEVEL": "WARNING",
    }
    birth = date(1991, 3, 4)
    number = permit_number.generate(Region.HK, birth, 2 * (uuid.uuid4().int % 400) + 1).value
    today = date.today()
    issued = CardIssued(
        card_number=number,
        issue_count=1,
        application_id=f"app-{uid}",
        kind=ApplicationKind.FIRST,
        name="陈大文",
        name_latin="CHAN TAI MAN",
        sex=Sex.MALE,
        birth_date=birth,
        region=Region.HK,
        address="历下区科院路6号",
        district="历下区",
        travel_permit_number="H12345678",
        valid_from=today,
        valid_until=valid_until(today),
        issuing_authority="济南市公安局历下分局",
        acceptance_point="LIXIA",
    )
    async with running("permits_rights", port, env, tmp_path / "rights.log") as url:
        await asyncio.sleep(3.0)
        publisher = EventPublisher(audit_service.settings, "/permits/test")
        await publisher.start()
        try:
            await publisher.publish(publisher.event(issued))
        finally:
            await publisher.stop()
        headers = {"Authorization": "Bearer dev-agency-hotel"}
        async with httpx.AsyncClient(headers=headers) as client:
            for _ in range(150):
                answer = await client.get(
                    f"{url}/api/v1/verify", params={"number": number, "name": "陈大文"}
                )
                assert answer.status_code == 200, answer.text
                if answer.json()["valid"]:
                    break
                await asyncio.sleep(0.2)
            assert answer.json() == {
                "valid": True,
                "status": "active",
                "valid_until": valid_until(today).isoformat(),
            }
    items = await trail_of(audit_service, number, {"verify", "feed.published"})
    verifications = [item for item in items if item["action"] == "verify"]
    assert verifications[-1]["agency"] == "hotel"
    assert verifications[-1]["outcome"] == "active"
    assert verifications[-1]["actor"]["role"] == "agency:hotel"
    feeds = {item["agency"] for item in items if item["action"] == "feed.published"}
    assert "hotel" in feeds
    assert all(item["actor"]["role"] == "system" for item in items if item["action"] != "verify")
