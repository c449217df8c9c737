"""A person's one open application, held by a claim document of its own.

The claim and the application document are written by different inserts, so the tests cover
what can be left between them (a crash, a lost release) and that the relay clearing an outbox
and a release never meet on one document, even from two processes' store clients at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from intake_forms import application_body
from intake_harness import CLERK, RunningIntake, eventually

from permits_common.domain import travel_permit
from permits_common.events.models import ApplicationRejected
from permits_common.kafka import EventPublisher
from permits_common.mongo import mongo_client
from permits_intake.adapters.store import IntakeStore
from permits_intake.service.applications import application_id_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def submit(
    intake: RunningIntake, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {**CLERK, "Idempotency-Key": key or uuid.uuid4().hex}
    return await intake.client.post("/api/v1/applications", json=body, headers=headers)


def person_of(body: dict[str, Any]) -> str:
    return travel_permit.base_number(body["applicant"]["travel_permit_number"])


def store_of(intake: RunningIntake) -> IntakeStore:
    store: IntakeStore = intake.app.state.runtime.store
    return store


async def test_the_open_application_holds_its_person_until_it_is_released(
    intake: RunningIntake,
) -> None:
    body = application_body()
    first = await submit(intake, body)
    assert first.status_code == 201
    claim = await store_of(intake).person_claim(person_of(body))
    assert claim is not None
    assert claim.application_id == first.json()["id"]

    refused = await submit(intake, body)
    assert refused.status_code == 409
    assert refused.json()["code"] == "duplicate_open_application"

    await store_of(intake).release_person(first.json()["id"])
    assert await store_of(intake).person_claim(person_of(body)) is None
    assert (await submit(intake, body)).status_code == 201


async def test_a_retry_is_answered_from_the_claim_it_holds(intake: RunningIntake) -> None:
    body = application_body()
    key = uuid.uuid4().hex
    first, *retries = await asyncio.gather(*(submit(intake, body, key) for _ in range(6)))
    assert first.status_code == 201
    assert all(r.status_code == 201 and r.json() == first.json() for r in retries)
    stored = await store_of(intake).applications.count_documents({"person": person_of(body)})
    assert stored == 1


async def test_a_claim_left_by_a_crash_between_the_inserts_is_taken_over_once_settled(
    intake: RunningIntake,
) -> None:
    """A claim whose application never appeared: refused while it may still be on its way,
    taken over once older than a submission takes."""
    store = store_of(intake)
    body = application_body()
    person = person_of(body)
    now = datetime.now(UTC)
    assert await store.claim_person(person, str(uuid.uuid4()), "LIXIA", now)
    assert (await submit(intake, body)).status_code == 409

    await store.person_claims.update_one(
        {"_id": person}, {"$set": {"claimed_at": now - timedelta(minutes=5)}}
    )
    accepted = await submit(intake, body)
    assert accepted.status_code == 201
    claim = await store.person_claim(person)
    assert claim is not None
    assert claim.application_id == accepted.json()["id"]


async def test_a_claim_naming_a_refused_submission_is_taken_over(intake: RunningIntake) -> None:
    """A retry re-claimed the person for a key whose answer was a refusal, and crashed before
    dropping the claim: the claim holds nothing."""
    store = store_of(intake)
    body = application_body()
    person = person_of(body)
    open_one = await submit(intake, body)
    assert open_one.status_code == 201
    refused_key = uuid.uuid4().hex
    assert (await submit(intake, body, refused_key)).status_code == 409
    await store.release_person(open_one.json()["id"])
    refused_id = application_id_for(f"clerk|{refused_key}")
    assert await store.claim_person(person, refused_id, "LIXIA", datetime.now(UTC))

    assert (await submit(intake, body)).status_code == 201


async def test_a_claim_whose_release_was_lost_is_taken_over(intake: RunningIntake) -> None:
    """The person's application was rejected (closed), and its claim is still there, as if
    the release had been lost: the person may apply again."""
    store = store_of(intake)
    body = application_body()
    person = person_of(body)
    application_id = (await submit(intake, body)).json()["id"]
    publisher = EventPublisher(intake.settings, "issuance-test")
    await publisher.start()
    try:
        rejected = ApplicationRejected(
            application_id=application_id,
            acceptance_point="LIXIA",
            code="residence_too_short",
            message="the register shows a later residence start",
        )
        await publisher.publish(publisher.event(rejected))
    finally:
        await publisher.stop()

    async def released() -> bool:
        return await store.person_claim(person) is None

    await eventually(released)
    assert await store.claim_person(person, application_id, "LIXIA", datetime.now(UTC))

    accepted = await submit(intake, body)
    assert accepted.status_code == 201
    claim = await store.person_claim(person)
    assert claim is not None
    assert claim.application_id == accepted.json()["id"]


async def test_outbox_marks_and_releases_from_two_processes_never_undo_each_other(
    intake: RunningIntake,
) -> None:
    """Two store clients (as two intake replicas would have) clear outboxes and release
    people of the same applications at the same moment: every write holds."""
    bodies = [application_body() for _ in range(40)]
    answers = await asyncio.gather(*(submit(intake, body) for body in bodies))
    ids = [answer.json()["id"] for answer in answers]
    store = store_of(intake)
    await store.applications.update_many(
        {"_id": {"$in": ids}}, {"$set": {"outbox": [{"id": "x", "value": "{}"}]}}
    )
    other_client = mongo_client(intake.settings)
    try:
        replica = IntakeStore(other_client[intake.settings.mongo_database])
        await asyncio.gather(
            store.mark_published(ids),
            *(replica.release_person(application_id) for application_id in ids),
        )
    finally:
        await other_client.close()

    async def settled() -> bool:
        left = await store.applications.count_documents(
            {"_id": {"$in": ids}, "outbox": {"$exists": True}}
        )
        return left == 0

    await eventually(settled, within=10)
    for body in bodies:
        assert await store.person_claim(person_of(body)) is None
