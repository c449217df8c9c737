"""The audit service as a real process: entries arrive, are chained and served; tampering in the
store is reported; kill -9 under load neither loses nor doubles an entry."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from audit_harness import AuditService

from permits_common.audit import AuditTrail, AuditUnavailableError
from permits_common.mongo import mongo_client
from permits_common.web.auth import Principal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CLERK = Principal("clerk", "LIXIA", identity="tok-clerk")
HOTEL = Principal("agency", "hotel", identity="tok-hotel")


async def test_entries_are_served_per_subject_oldest_first_and_the_chain_verifies(
    audit_service: AuditService, trail: AuditTrail
) -> None:
    subject = f"app-{uuid.uuid4().hex[:8]}"
    await trail.record(CLERK, "application.read", subject, "ok", point="LIXIA", purpose="status")
    await trail.record(HOTEL, "verify", "810000199001010011", "active", agency="hotel")
    await trail.record(CLERK, "application.collect", subject, "collected", point="LIXIA")
    await audit_service.wait_for_entries(3)
    answer = await audit_service.get("/api/v1/audit", subject=subject)
    items = answer["items"]
    assert [item["action"] for item in items] == ["application.read", "application.collect"]
    assert items[0]["actor"] == {"id": "tok-clerk", "role": "clerk:LIXIA"}
    assert items[0]["point"] == "LIXIA"
    assert items[0]["service"] == "test"
    assert "token" not in str(items).replace("tok-clerk", "")
    assert await audit_service.get("/api/v1/audit/verify") == {"entries": 3, "intact": True}


async def test_an_entry_changed_in_the_store_is_reported(
    audit_service: AuditService, trail: AuditTrail
) -> None:
    subject = f"card-{uuid.uuid4().hex[:8]}"
    await asyncio.gather(
        *(trail.record(HOTEL, "verify", subject, "active", agency="hotel") for _ in range(20))
    )
    docs = await audit_service.wait_for_entries(20)
    victim = sorted(docs, key=lambda doc: str(doc["_id"]))[len(docs) // 2]
    client = mongo_client(audit_service.settings)
    try:
        await client[audit_service.database]["entries"].update_one(
            {"_id": victim["_id"]}, {"$set": {"outcome": "not_found"}}
        )
    finally:
        await client.close()
    report = await audit_service.get("/api/v1/audit/verify")
    assert report["intact"] is False
    assert report["first_broken"]["entry"] == victim["_id"]
    assert "content" in report["first_broken"]["reason"]


async def test_kill_9_under_load_loses_and_doubles_nothing(
    audit_service: AuditService, trail: AuditTrail
) -> None:
    subjects = [f"card-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    answered: list[str] = []

    async def load(total: int) -> None:
        for start in range(0, total, 50):
            batch = [subjects[(start + i) % len(subjects)] for i in range(50)]
            results = await asyncio.gather(
                *(trail.record(HOTEL, "verify", s, "active", agency="hotel") for s in batch),
                return_exceptions=True,
            )
            for subject, result in zip(batch, results, strict=True):
                if not isinstance(result, AuditUnavailableError):
                    answered.append(subject)
            await asyncio.sleep(0.01)

    loading = asyncio.create_task(load(4000))
    await audit_service.wait_for_entries(300)
    audit_service.kill()
    await asyncio.sleep(1.0)
    await audit_service.start()
    await loading
    docs = await audit_service.wait_for_entries(len(answered), timeout=120)
    await asyncio.sleep(2.0)
    docs = await audit_service.entries()
    assert len(docs) == len(answered) == 4000
    assert len({doc["event_id"] for doc in docs}) == len(docs)
    assert await audit_service.get("/api/v1/audit/verify") == {"entries": 4000, "intact": True}
