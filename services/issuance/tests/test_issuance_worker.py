"""The issuance worker as a real process on the real broker and store, with the production
centre simulator as a real process: the whole card pipeline, redelivery, production retries,
rescheduling when a year is loaded, the moved clock, and dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from issuance_harness import EventWatcher, IssuanceStack, accepted, kafka_settings, of_subject

from permits_common.clock import Clock
from permits_common.domain.calendar import WorkingDayCalendar
from permits_common.domain.card import valid_until
from permits_common.events import topics
from permits_common.events.envelope import Event
from permits_common.events.models import CalendarLoaded
from permits_common.kafka import EventPublisher
from permits_common.reference import acceptance_points_by_code
from permits_issuance.domain.deadline import schedule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
OPS = {"Authorization": "Bearer dev-ops"}
WATCHED = [topics.APPLICATIONS, topics.CARDS, topics.SLA, topics.DEADLETTER]


@pytest.fixture
async def publisher(infrastructure: dict[str, str]) -> AsyncIterator[EventPublisher]:
    """Publishes as intake would."""
    events = EventPublisher(kafka_settings(infrastructure), "permits-intake")
    await events.start()
    yield events
    await events.stop()


@pytest.fixture
async def watcher(infrastructure: dict[str, str]) -> AsyncIterator[EventWatcher]:
    """Everything published on the watched topics from now on."""
    events = EventWatcher(infrastructure["PERMITS_KAFKA_BOOTSTRAP"], WATCHED)
    await events.start()
    yield events
    await events.stop()


@pytest.fixture
async def simulator(issuance_stack: IssuanceStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the simulator whose failure switches start at zero."""
    async with httpx.AsyncClient(base_url=issuance_stack.simulator_url) as client:
        await client.post(
            "/api/v1/control",
            json={"fail_next_orders": 0, "fail_next_callbacks": 0, "drop_next_callbacks": 0},
        )
        yield client


async def publish_until(
    publisher: EventPublisher,
    watcher: EventWatcher,
    event: Event[Any],
    done: Any,
    within: float = 30.0,
) -> None:
    """Publish (again, same id) until the worker reacted: a fresh consumer group starts at the
    end of the topic, so the first copy may land before the worker's partitions are assigned."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await publisher.publish(event)
        try:
            await watcher.wait_until(done, within=3.0)
            return
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise


def types_of(events: list[Event[Any]], subject: str) -> list[str]:
    """Event types about one subject, in order, each id once."""
    return [event.type.removeprefix("permits.") for event in of_subject(events, subject)]


async def test_accepted_to_ready_with_every_event_in_order(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    application_id = issuance_stack.application_id()
    data = accepted(application_id)
    event = publisher.event(data)

    def ready(events: list[Event[Any]]) -> bool:
        return bool(of_subject(events, application_id, "application.ready")) and bool(
            of_subject(events, application_id, "sla.met")
        )

    await publish_until(publisher, watcher, event, ready)
    mine = [t for t in types_of(watcher.events, application_id) if t != "application.accepted"]
    assert mine == [
        "sla.scheduled",
        "application.approved",
        "application.in_production",
        "application.ready",
        "sla.met",
    ]
    approved = of_subject(watcher.events, application_id, "application.approved")[0].data
    number = approved.card_number
    assert approved.issue_count == 1
    issued = await watcher.wait_until(lambda e: bool(of_subject(e, number, "card.issued")))
    card = of_subject(issued, number, "card.issued")[0].data
    today = Clock().today()
    assert card.valid_from == today
    assert card.valid_until == valid_until(today)
    assert card.issuing_authority == acceptance_points_by_code()["LIXIA"].issuing_authority
    assert card.name == data.applicant.name
    assert card.travel_permit_number == data.applicant.travel_permit_number
    assert card.application_id == application_id

    redelivered = publisher.event(data)
    await publisher.publish(redelivered)
    await asyncio.sleep(2.0)
    await watcher.poll()
    approvals = [
        e
        for e in watcher.events
        if e.type == "permits.application.approved" and e.subject == application_id
    ]
    assert {e.id for e in approvals} == {approvals[0].id}
    assert {e.data.card_number for e in approvals} == {number}

    async with httpx.AsyncClient(base_url=issuance_stack.url) as client:
        metrics = (await client.get("/metrics")).text
        assert "permits_cards_issued_total" in metrics
        assert "permits_issue_working_days_bucket" in metrics
        summary = await client.get("/api/v1/sla/summary", headers=OPS)
        assert summary.status_code == 200
        assert "nearest_deadlines" in summary.json()
        assert (await client.get("/api/v1/sla/summary")).status_code == 401
        clerk = {"Authorization": "Bearer dev-clerk"}
        assert (await client.get("/api/v1/sla/summary", headers=clerk)).status_code == 403


async def test_a_failed_production_is_retried_until_the_card_is_ready(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    await simulator.post(
        "/api/v1/control",
        json={"fail_next_orders": 2, "fail_next_callbacks": 1, "drop_next_callbacks": 1},
    )
    application_id = issuance_stack.application_id()
    event = publisher.event(accepted(application_id))

    def approved(events: list[Event[Any]]) -> bool:
        return bool(of_subject(events, application_id, "application.approved"))

    await publish_until(publisher, watcher, event, approved)
    await watcher.wait_until(
        lambda e: bool(of_subject(e, application_id, "application.ready")), within=40.0
    )
    order = of_subject(watcher.events, application_id, "application.in_production")[0]
    log = (await simulator.get(f"/api/v1/orders/{order.data.production_request_id}")).json()
    answers = [(a["answer"], a.get("outcome")) for a in log["attempts"]]
    assert answers[:5] == [(503, None), (503, None), (202, None), (202, "failed"), (202, "ready")]


async def test_loading_a_year_reschedules_provisional_deadlines(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    """A far year (2098) stands in for "next year": loading the real 2027 on the shared broker
    would change every other test's calendar."""
    await simulator.post("/api/v1/control", json={"drop_next_callbacks": 20})
    application_id = issuance_stack.application_id()
    accepted_on = date(2097, 12, 31)
    event = publisher.event(accepted(application_id, accepted_on=accepted_on))

    def scheduled(events: list[Event[Any]]) -> bool:
        return bool(of_subject(events, application_id, "sla.scheduled"))

    await publish_until(publisher, watcher, event, scheduled)
    before = of_subject(watcher.events, application_id, "sla.scheduled")[0].data
    assert before.provisional
    extra_day_off = before.due_date
    loaded = publisher.event(
        CalendarLoaded(year=2098, holidays=[date(2098, 1, 1), extra_day_off], workdays=[])
    )

    def rescheduled(events: list[Event[Any]]) -> bool:
        return bool(of_subject(events, application_id, "sla.rescheduled"))

    await publish_until(publisher, watcher, loaded, rescheduled)
    after = of_subject(watcher.events, application_id, "sla.rescheduled")[0].data
    assert not after.provisional
    assert after.previous_due_date == before.due_date
    assert after.due_date > before.due_date
    await simulator.post("/api/v1/control", json={"drop_next_callbacks": 0})


async def test_the_moved_clock_raises_at_risk_and_breach(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    await simulator.post("/api/v1/control", json={"drop_next_callbacks": 20})
    application_id = issuance_stack.application_id()
    today = Clock().today()
    event = publisher.event(accepted(application_id, accepted_on=today))
    planned = schedule(WorkingDayCalendar(), today, 5)

    def scheduled(events: list[Event[Any]]) -> bool:
        return bool(of_subject(events, application_id, "sla.scheduled"))

    await publish_until(publisher, watcher, event, scheduled)
    async with httpx.AsyncClient(base_url=issuance_stack.url) as client:
        try:
            moved = await client.put(
                "/api/v1/dev/clock",
                headers=OPS,
                json={"offset_days": (planned.at_risk_on - today).days},
            )
            assert moved.status_code == 200
            assert moved.json()["today"] == planned.at_risk_on.isoformat()
            events = await watcher.wait_until(
                lambda e: bool(of_subject(e, application_id, "sla.at_risk"))
            )
            assert of_subject(events, application_id, "sla.at_risk")[0].data.working_days_left == 5
            await client.put(
                "/api/v1/dev/clock",
                headers=OPS,
                json={"offset_days": (planned.breach_on - today).days},
            )
            await watcher.wait_until(lambda e: bool(of_subject(e, application_id, "sla.breached")))
            metrics = (await client.get("/metrics")).text
            assert 'permits_sla_breaches_total{point="LIXIA"}' in metrics
            assert 'permits_sla_open{point="LIXIA",state="breached"}' in metrics
            forbidden = await client.put(
                "/api/v1/dev/clock", headers={"Authorization": "Bearer dev-clerk"}, json={}
            )
            assert forbidden.status_code == 403
        finally:
            await client.put("/api/v1/dev/clock", headers=OPS, json={"offset_days": 0})
            await simulator.post("/api/v1/control", json={"drop_next_callbacks": 0})
    assert timedelta(days=1) == planned.breach_on - planned.due_date


async def test_a_poison_message_is_dead_lettered_and_the_stream_goes_on(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    key = f"{issuance_stack.prefix}poison-{uuid.uuid4().hex[:8]}"
    consumer = f"{issuance_stack.group}:applications"

    def dead_lettered(events: list[Event[Any]]) -> bool:
        return any(
            e.type == "permits.deadletter"
            and e.data.original_key == key
            and e.data.consumer == consumer
            for e in events
        )

    deadline = asyncio.get_running_loop().time() + 30
    while True:
        await publisher.producer.send_and_wait(topics.APPLICATIONS, b"{not json", key=key.encode())
        try:
            await watcher.wait_until(dead_lettered, within=3.0)
            break
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise
    application_id = issuance_stack.application_id()
    event = publisher.event(accepted(application_id))
    await publish_until(
        publisher,
        watcher,
        event,
        lambda e: bool(of_subject(e, application_id, "application.approved")),
    )


async def test_a_card_expires_after_its_last_valid_day(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    application_id = issuance_stack.application_id()
    event = publisher.event(accepted(application_id))
    await publish_until(
        publisher,
        watcher,
        event,
        lambda e: bool(of_subject(e, application_id, "application.ready")),
    )
    ready = of_subject(watcher.events, application_id, "application.ready")[0].data
    last_day = valid_until(ready.ready_on)
    async with httpx.AsyncClient(base_url=issuance_stack.url) as client:
        try:
            await client.put(
                "/api/v1/dev/clock",
                headers=OPS,
                json={"offset_days": (last_day - Clock().today()).days},
            )
            await watcher.poll()
            assert not of_subject(watcher.events, ready.card_number, "card.expired")
            await client.put(
                "/api/v1/dev/clock",
                headers=OPS,
                json={"offset_days": (last_day - Clock().today()).days + 1},
            )
            events = await watcher.wait_until(
                lambda e: bool(of_subject(e, ready.card_number, "card.expired"))
            )
            expired = of_subject(events, ready.card_number, "card.expired")[0].data
            assert expired.valid_until == last_day
            assert expired.issue_count == ready.issue_count
        finally:
            await client.put("/api/v1/dev/clock", headers=OPS, json={"offset_days": 0})
