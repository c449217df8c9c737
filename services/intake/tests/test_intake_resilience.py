"""Outages answer 503 with Retry-After, never 500, and heal without a restart; an event stored
but never published (the process died) goes out at the next start."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from intake_forms import application_body
from intake_harness import (
    CLERK,
    OPS,
    TopicTap,
    eventually,
    intake_settings,
    running_intake,
)
from intake_proxy import CuttableProxy

from permits_common.events import topics
from permits_common.events.envelope import Event
from permits_common.web.auth import Principal
from permits_intake.adapters.store import IntakeStore, outbox_entry
from permits_intake.domain.forms import ApplicationForm
from permits_intake.runtime import IntakeRuntime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def post_headers() -> dict[str, str]:
    return {**CLERK, "Idempotency-Key": uuid.uuid4().hex}


async def test_unreachable_store_answers_503(infrastructure: dict[str, str]) -> None:
    settings = intake_settings(
        infrastructure, mongo_url="mongodb://127.0.0.1:1/", mongo_timeout_ms=300
    )
    async with running_intake(settings, wait_ready=False, skip=False) as intake:
        assert (await intake.client.get("/healthz")).status_code == 200
        ready = await intake.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"] == "unreachable"
        response = await intake.client.post(
            "/api/v1/applications", json=application_body(), headers=post_headers()
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["code"] == "service_unavailable"
        view = await intake.client.get("/api/v1/applications/x", headers=OPS)
        assert view.status_code == 503


async def test_unreachable_kafka_answers_503(infrastructure: dict[str, str]) -> None:
    settings = intake_settings(infrastructure, kafka_bootstrap="127.0.0.1:1")
    async with running_intake(settings, wait_ready=False, skip=False) as intake:
        assert (await intake.client.get("/healthz")).status_code == 200
        ready = await intake.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"] == "unreachable"
        response = await intake.client.post(
            "/api/v1/applications", json=application_body(), headers=post_headers()
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]


async def test_store_outage_then_recovery_without_restart(infrastructure: dict[str, str]) -> None:
    store = urlsplit(infrastructure["PERMITS_MONGO_URL"])
    proxy = CuttableProxy(store.hostname or "127.0.0.1", store.port or 27017)
    await proxy.start()
    settings = intake_settings(
        infrastructure, mongo_url=f"mongodb://127.0.0.1:{proxy.port}/", mongo_timeout_ms=500
    )
    try:
        async with running_intake(settings) as intake:
            body = application_body()
            accepted = await intake.client.post(
                "/api/v1/applications", json=body, headers=post_headers()
            )
            assert accepted.status_code == 201
            await proxy.cut()
            during = await intake.client.post(
                "/api/v1/applications", json=application_body(), headers=post_headers()
            )
            assert during.status_code == 503, during.text
            assert during.headers["retry-after"]
            read = await intake.client.get(
                f"/api/v1/applications/{accepted.json()['id']}", headers=CLERK
            )
            assert read.status_code == 503
            await proxy.start()

            async def accepts_again() -> bool:
                response = await intake.client.post(
                    "/api/v1/applications", json=application_body(), headers=post_headers()
                )
                assert response.status_code in (201, 503), response.text
                return response.status_code == 201

            await eventually(accepts_again, within=20)
    finally:
        await proxy.cut()


async def test_stored_but_unpublished_event_goes_out_at_start(
    infrastructure: dict[str, str],
) -> None:
    settings = intake_settings(infrastructure)
    crashed = IntakeRuntime(settings)
    await crashed.store.ensure_indexes()
    answer = await crashed.applications.submit(
        Principal("clerk"), uuid.uuid4().hex, ApplicationForm.model_validate(application_body())
    )
    assert answer.status == 201
    application_id = answer.body["id"]
    stored = await crashed.store.applications.find_one({"_id": application_id})
    assert stored is not None
    assert stored["outbox_pending"] is True
    event_id = stored["outbox"][0]["id"]
    await crashed.client.close()

    async with (
        TopicTap(settings, topics.APPLICATIONS) as tap,
        running_intake(settings) as intake,
    ):
        event = await tap.wait_for(lambda e: e.subject == application_id)
        assert event.id == event_id

        async def marked() -> bool:
            doc = await intake.app.state.runtime.store.applications.find_one(
                {"_id": application_id}
            )
            return bool(doc and "outbox_pending" not in doc and "outbox" not in doc)

        await eventually(marked)


async def test_relay_clears_only_what_it_published_of_a_batch(
    infrastructure: dict[str, str],
) -> None:
    """The relay clears a batch's outboxes with one command per token, yet a document stored
    under the same token that the relay never heard of (an insert whose answer was lost) keeps
    its flag for the sweep; every signalled one is published and cleared. (The orphan is dated
    ahead so that no sweep during the test takes it.)"""
    settings = intake_settings(infrastructure)
    async with (
        TopicTap(settings, topics.APPLICATIONS) as tap,
        running_intake(settings) as intake,
    ):
        runtime = intake.app.state.runtime
        token = runtime.relay.batch
        orphan_id = uuid.uuid4().hex
        orphan = {
            "_id": orphan_id,
            "outbox": [outbox_entry(uuid.uuid4().hex, b"{}")],
            "created_at": datetime.now(UTC) + timedelta(hours=1),
        }
        assert await runtime.store.insert_application(orphan, token)
        answers = await asyncio.gather(
            *(
                intake.client.post(
                    "/api/v1/applications", json=application_body(), headers=post_headers()
                )
                for _ in range(20)
            )
        )
        assert [answer.status_code for answer in answers] == [201] * 20
        ids = {answer.json()["id"] for answer in answers}
        for application_id in ids:
            await tap.wait_for(partial(_is_about, application_id))
        store: IntakeStore = runtime.store

        async def all_cleared() -> bool:
            pending = {"_id": {"$in": sorted(ids)}, "outbox_pending": {"$exists": True}}
            return await store.applications.count_documents(pending) == 0

        await eventually(all_cleared, within=10)
        stored = await store.applications.find_one({"_id": orphan_id})
        assert stored is not None
        assert stored["outbox_pending"] is True
        assert stored["outbox_batch"] == token
        assert stored["outbox"]


def _is_about(subject: str, event: Event[Any]) -> bool:
    return event.subject == subject
