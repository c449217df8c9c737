"""A person's one open application: the lock held in the application document, and what
happens when the two writes in place of that document (the outbox relay's clear, the release
of the person) meet and FerretDB's whole-document rewrite undoes one of them."""

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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


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


async def reject(intake: RunningIntake, application_ids: list[str]) -> None:
    """Reject the applications as issuance would, and wait until the views took the
    rejections in (their steps are stored). Not until every person is released: a release
    can be undone by the outbox relay clearing the same document at that moment (right after
    submission it often is), which the person's next submission heals (see
    `IntakeStore.release_person`); the tests below make that happen on purpose."""
    publisher = EventPublisher(intake.settings, "issuance-test")
    await publisher.start()
    try:
        await publisher.publish_all(
            [
                publisher.event(
                    ApplicationRejected(
                        application_id=application_id,
                        acceptance_point="LIXIA",
                        code="residence_too_short",
                        message="the register shows a later residence start",
                    )
                )
                for application_id in application_ids
            ]
        )
    finally:
        await publisher.stop()
    steps = store_of(intake).steps

    async def rejected() -> bool:
        stored = await steps.count_documents(
            {"application_id": {"$in": application_ids}, "status": "rejected"}
        )
        return stored == len(application_ids)

    await eventually(rejected, within=60)


async def test_retries_at_the_same_moment_make_one_application(intake: RunningIntake) -> None:
    body = application_body()
    key = uuid.uuid4().hex
    first, *retries = await asyncio.gather(*(submit(intake, body, key) for _ in range(6)))
    assert first.status_code == 201
    assert all(r.status_code == 201 and r.json() == first.json() for r in retries)
    assert await store_of(intake).applications.count_documents({"person": person_of(body)}) == 1


async def test_a_release_lost_to_a_concurrent_write_is_made_by_the_next_submission(
    intake: RunningIntake,
) -> None:
    """The application was rejected, but its lock is still there (as when the relay's
    rewrite of the document undid the release): the person may apply, and only then."""
    body = application_body()
    first = await submit(intake, body)
    assert first.status_code == 201
    application_id = first.json()["id"]
    assert (await submit(intake, body)).status_code == 409

    await reject(intake, [application_id])
    applications = store_of(intake).applications
    person = person_of(body)
    await applications.update_one({"_id": application_id}, {"$set": {"open_person": person}})

    accepted = await submit(intake, body)
    assert accepted.status_code == 201, accepted.text
    old = await applications.find_one({"_id": application_id})
    assert old is not None
    assert "open_person" not in old
    assert (await submit(intake, body)).status_code == 409, "the new application holds them"


async def test_outbox_clears_and_releases_from_two_processes_converge(
    intake: RunningIntake,
) -> None:
    """Two store clients (as two intake replicas have) clear the outboxes and release the
    people of the same closed applications at the same moment; whatever one undid of the
    other, every person can apply again and every outbox ends cleared (by the sweep)."""
    bodies = [application_body() for _ in range(30)]
    answers = await asyncio.gather(*(submit(intake, body) for body in bodies))
    ids = [answer.json()["id"] for answer in answers]
    await reject(intake, ids)
    store = store_of(intake)
    left_behind = {
        "outbox": [{"id": "unreadable", "value": "{}"}],
        "outbox_pending": True,
        "created_at": datetime.now(UTC) - timedelta(minutes=1),
    }
    for body, application_id in zip(bodies, ids, strict=True):
        await store.applications.update_one(
            {"_id": application_id}, {"$set": {**left_behind, "open_person": person_of(body)}}
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

    again = await asyncio.gather(*(submit(intake, body) for body in bodies))
    assert [answer.status_code for answer in again] == [201] * len(bodies)

    async def cleared() -> bool:
        pending = {"_id": {"$in": ids}, "outbox_pending": {"$exists": True}}
        return await store.applications.count_documents(pending) == 0

    await eventually(cleared, within=30)
