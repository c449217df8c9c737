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
from pymongo.errors import ConnectionFailure

from permits_common.events import topics
from permits_common.events.envelope import Event
from permits_common.web.auth import Principal
from permits_intake.adapters.store import IntakeStore
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
    """A process that stored an application and died before publishing it left its token open
    in the ledger; the next process publishes the event at start-up."""
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
    assert await crashed.store.outbox_batches.find_one({"_id": stored["outbox_batch"]})
    event_id = stored["outbox"][0]["id"]
    await crashed.client.close()

    async with (
        TopicTap(settings, topics.APPLICATIONS) as tap,
        running_intake(settings),
    ):
        event = await tap.wait_for(lambda e: e.subject == application_id)
        assert event.id == event_id


async def test_relay_settles_its_tokens_and_leaves_an_unanswered_insert_to_the_sweep(
    infrastructure: dict[str, str],
) -> None:
    """The relay settles the tokens of what it published with one ledger command each and no
    write to the documents; an insert that stored its document but lost its answer leaves its
    token open, and once that token is old enough the sweep publishes the event and settles
    it."""
    settings = intake_settings(infrastructure)
    async with (
        TopicTap(settings, topics.APPLICATIONS) as tap,
        running_intake(settings) as intake,
    ):
        runtime = intake.app.state.runtime
        store: IntakeStore = runtime.store
        answers = await asyncio.gather(
            *(
                intake.client.post(
                    "/api/v1/applications", json=application_body(), headers=post_headers()
                )
                for _ in range(20)
            )
        )
        assert [answer.status_code for answer in answers] == [201] * 20
        ids = sorted(answer.json()["id"] for answer in answers)
        for application_id in ids:
            await tap.wait_for(partial(_is_about, application_id))
        docs = await store.applications.find({"_id": {"$in": ids}}).to_list()
        tokens = {doc["outbox_batch"] for doc in docs}
        assert all(doc["outbox"] and "outbox_pending" not in doc for doc in docs)

        async def settled() -> bool:
            await asyncio.sleep(0.2)  # let the relay move to a new token and settle this one
            ledger = {doc["_id"] async for doc in store.outbox_batches.find({})}
            return not tokens & ledger

        await eventually(settled, within=15)

        real_insert = store.insert_application

        async def answer_lost(doc: dict[str, Any], outbox_batch: str) -> bool:
            await real_insert(doc, outbox_batch)
            raise ConnectionFailure("the answer of the insert was lost")

        store.insert_application = answer_lost  # type: ignore[method-assign]
        lost = await intake.client.post(
            "/api/v1/applications", json=application_body(), headers=post_headers()
        )
        store.insert_application = real_insert  # type: ignore[method-assign]
        assert lost.status_code == 503
        orphan = await store.applications.find_one({"outbox_batch": {"$nin": list(tokens)}})
        assert orphan is not None
        orphan_token = orphan["outbox_batch"]
        await intake.client.post(  # a next insert, so the relay moves past the orphan's token
            "/api/v1/applications", json=application_body(), headers=post_headers()
        )

        async def left_to_the_sweep() -> bool:
            await asyncio.sleep(0.2)
            return orphan_token not in runtime.relay.held_tokens

        await eventually(left_to_the_sweep, within=15)
        assert await store.outbox_batches.find_one({"_id": orphan_token}), "left open"
        await store.outbox_batches.update_one(
            {"_id": orphan_token}, {"$set": {"opened_at": datetime.now(UTC) - timedelta(hours=1)}}
        )
        event = await tap.wait_for(partial(_is_about, orphan["_id"]))
        assert event.id == orphan["outbox"][0]["id"]

        async def orphan_settled() -> bool:
            return await store.outbox_batches.find_one({"_id": orphan_token}) is None

        await eventually(orphan_settled, within=15)


def _is_about(subject: str, event: Event[Any]) -> bool:
    return event.subject == subject
