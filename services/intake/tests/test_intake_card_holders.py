"""The set of people ever listed with a card, on the real broker and store: the follower alone
(no consumer group) makes it complete from the store and every partition, a first application
from someone never listed costs no `holder_cards` command, a holder is still refused, and the
store is asked whenever the set is not complete."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from intake_forms import application_body, unique_card_number, unique_travel_permit
from intake_harness import CLERK, RunningIntake, eventually, intake_settings, running_intake
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import AutoReconnect
from test_intake_flow import card_issued, publish

from permits_common import mongo
from permits_common.domain.travel_permit import base_number
from permits_common.events.envelope import new_event
from permits_common.kafka import EventPublisher, connection_options
from permits_common.mongo import Document
from permits_intake.adapters.card_holders import CardHoldersFollower
from permits_intake.adapters.store import IntakeStore
from permits_intake.config import IntakeSettings
from permits_intake.domain.cards import apply_card_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@dataclass
class HolderLookups(monitoring.CommandListener):
    """The people the store was asked about in `holder_cards`, from the driver's own events."""

    asked: list[Any] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "holder_cards":
            self.asked.append((event.command.get("filter") or {}).get("_id"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@pytest.fixture
def settings(infrastructure: dict[str, str]) -> IntakeSettings:
    return intake_settings(infrastructure)


WatchedStore = tuple[IntakeStore, HolderLookups]


@pytest.fixture
async def watched_store(settings: IntakeSettings) -> AsyncIterator[WatchedStore]:
    """A store on the test's own database, and the `holder_cards` look-ups sent to it."""
    lookups = HolderLookups()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), event_listeners=[lookups]
    )
    yield IntakeStore(client[settings.mongo_database]), lookups
    await client.drop_database(settings.mongo_database)
    await client.close()


@pytest.fixture
async def card_topic(settings: IntakeSettings, unique: str) -> AsyncIterator[str]:
    """A card topic of this test's own, with three partitions."""
    name = f"test-cards-{unique}"
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
        with contextlib.suppress(Exception):
            await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
async def producer(settings: IntakeSettings) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(**connection_options(settings))
    await started.start()
    yield started
    await started.stop()


async def issue_on(producer: AIOKafkaProducer, topic: str, partition: int) -> str:
    """Publish a card issued to a new person on one partition; the person's base number."""
    permit = unique_travel_permit()
    data = card_issued(f"app-{uuid.uuid4().hex}", unique_card_number(), permit)
    await producer.send_and_wait(
        topic, new_event(data, source="issuance-test").to_json(), partition=partition
    )
    return base_number(permit)


async def commit_end(settings: IntakeSettings, group: str, partition: TopicPartition) -> None:
    """Stand in for a views consumer that has handled everything on one partition."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        end = (await consumer.end_offsets([partition]))[partition]
        consumer.assign([partition])
        await consumer.commit({partition: end})
    finally:
        await consumer.stop()


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check)


@contextlib.asynccontextmanager
async def following(follower: CardHoldersFollower) -> AsyncIterator[None]:
    task = asyncio.create_task(follower.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_follower_alone_makes_the_set_complete(
    settings: IntakeSettings,
    watched_store: WatchedStore,
    card_topic: str,
    producer: AIOKafkaProducer,
    unique: str,
) -> None:
    store, lookups = watched_store
    group = f"views-{unique}"
    await store.holder_cards.insert_one({"_id": "STORED0001", "cards": ["N1"]})
    handled = await issue_on(producer, card_topic, 0)
    await commit_end(settings, group, TopicPartition(card_topic, 0))
    waiting = await issue_on(producer, card_topic, 1)
    follower = CardHoldersFollower(
        settings,
        store.known_holders,
        store.holder_ids,
        views_group=group,
        views_offset_reset="earliest",
        topic=card_topic,
    )
    holders = store.known_holders

    async with following(follower):
        await until(lambda: holders.complete)
        assert not holders.may_hold_a_card(handled), "read from the store, not before the commit"
        assert holders.may_hold_a_card("STORED0001")
        assert holders.may_hold_a_card(waiting), "a partition with no commit is read from its start"

        await producer.send_and_wait(card_topic, b"not an event", partition=2)
        later = [await issue_on(producer, card_topic, partition) for partition in (2, 0)]
        await until(lambda: all(holders.may_hold_a_card(person) for person in later))

        never = base_number(unique_travel_permit())
        assert await store.active_card_of(never) is None
        assert never not in lookups.asked, "someone never listed costs no command"

    assert not holders.complete, "a stopped follower leaves the set incomplete"
    assert await store.active_card_of(never) is None
    assert never in lookups.asked, "an incomplete set sends every look-up to the store"


async def test_the_store_is_asked_until_the_set_is_loaded_again_after_an_outage(
    settings: IntakeSettings,
    watched_store: WatchedStore,
    card_topic: str,
    unique: str,
) -> None:
    store, lookups = watched_store
    loads = 0
    released = asyncio.Event()

    async def stored_holders() -> AsyncIterator[str]:
        nonlocal loads
        loads += 1
        if loads == 1:
            raise AutoReconnect("the store went away")
        await released.wait()
        async for holder in store.holder_ids():
            yield holder

    follower = CardHoldersFollower(
        settings,
        store.known_holders,
        stored_holders,
        views_group=f"views-{unique}",
        views_offset_reset="latest",
        topic=card_topic,
    )
    person = base_number(unique_travel_permit())
    async with following(follower):
        await until(lambda: loads == 2)
        assert not store.known_holders.complete
        await store.active_card_of(person)
        assert lookups.asked.count(person) == 1, "asked while the set is being loaded again"
        released.set()
        await until(lambda: store.known_holders.complete)
        await store.active_card_of(person)
        assert lookups.asked.count(person) == 1


async def submit_first(intake: RunningIntake, body: dict[str, Any]) -> str:
    """The answer's status, and for a refusal whether it is the card rule."""
    response = await intake.client.post(
        "/api/v1/applications", json=body, headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex}
    )
    if response.status_code == 409 and "holds a valid card" in response.text:
        return "409 card holder"
    return str(response.status_code)


async def test_a_holder_is_refused_and_a_newcomer_costs_no_card_lookup(
    settings: IntakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = application_body()
    permit_before = before["applicant"]["travel_permit_number"]
    seeding: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url.get_secret_value())
    try:
        issued = apply_card_event(None, card_issued("app-0", unique_card_number(), permit_before))
        assert issued is not None
        await IntakeStore(seeding[settings.mongo_database]).save_issued_cards([issued])
    finally:
        await seeding.close()
    lookups = HolderLookups()
    monkeypatch.setattr(mongo, "profile_listeners", lambda: [lookups])

    async with running_intake(settings) as intake:
        holders = intake.app.state.runtime.store.known_holders
        await until(lambda: holders.complete)
        assert await submit_first(intake, before) == "409 card holder", "issued before the start"

        newcomer = application_body()
        assert await submit_first(intake, newcomer) == "201"
        person = base_number(newcomer["applicant"]["travel_permit_number"])
        assert person not in lookups.asked

        publisher = EventPublisher(settings, "issuance-test")
        await publisher.start()
        try:
            during = application_body()
            permit_during = during["applicant"]["travel_permit_number"]
            number = unique_card_number()
            await publish(publisher, card_issued("app-1", number, permit_during))
        finally:
            await publisher.stop()
        await until(lambda: holders.may_hold_a_card(base_number(permit_during)))
        runtime_store = intake.app.state.runtime.store

        async def card_shown() -> bool:
            return await runtime_store.card(number) is not None

        await eventually(card_shown)
        assert await submit_first(intake, during) == "409 card holder", "issued while running"
