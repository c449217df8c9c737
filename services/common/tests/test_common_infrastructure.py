"""The shared Kafka and store helpers against the real local broker and FerretDB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient, UpdateOne, monitoring
from pymongo.errors import DuplicateKeyError, WriteError

from permits_common.events import topics
from permits_common.events.envelope import Event, decode
from permits_common.events.models import SlaScheduled
from permits_common.kafka import EventConsumer, EventPublisher, ensure_topics
from permits_common.mongo import (
    Claimed,
    Delivered,
    Document,
    GroupedInserts,
    ProcessedEvents,
    bulk_write_in_chunks,
    ensure_index,
    mongo_client,
)
from permits_common.settings import CommonSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def settings(infrastructure: dict[str, str]) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        mongo_url=infrastructure["PERMITS_MONGO_URL"],
    )


@pytest.fixture
async def database(settings: CommonSettings) -> AsyncIterator[Any]:
    client = mongo_client(settings)
    name = f"permits_test_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def publisher(settings: CommonSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(settings)
    made = EventPublisher(settings, "/permits/tests")
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


def _sla(application_id: str) -> SlaScheduled:
    return SlaScheduled(
        application_id=application_id,
        acceptance_point="LIXIA",
        due_date=date(2026, 3, 19),
        accepted_on=date(2026, 2, 13),
        provisional=False,
    )


async def test_a_published_cloudevent_is_consumed_with_its_key(
    settings: CommonSettings, publisher: EventPublisher
) -> None:
    application_id = uuid.uuid4().hex
    event = publisher.event(_sla(application_id))
    consumer = AIOKafkaConsumer(
        topics.SLA, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await publisher.publish(event)
        received = None
        async with asyncio.timeout(30):
            while received is None:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.key == application_id.encode():
                            received = record
    finally:
        await consumer.stop()
    back = decode(received.value)
    assert back.id == event.id
    assert back.data == event.data
    assert orjson.loads(received.value)["specversion"] == "1.0"


async def test_documents_are_written_indexed_uniquely_and_read(database: Any) -> None:
    people = database["people"]
    await ensure_index(people, [("permit", 1)], unique=True, name="permit")
    await ensure_index(people, [("permit", 1)], unique=True, name="permit")
    await people.insert_one({"_id": "a", "permit": "H12345678"})
    with pytest.raises(DuplicateKeyError):
        await people.insert_one({"_id": "b", "permit": "H12345678"})
    assert await people.find_one({"permit": "H12345678"}) == {"_id": "a", "permit": "H12345678"}


class InsertSizes(monitoring.CommandListener):
    """How many documents each `insert` command a client sends carries."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert":
            self.sizes.append(len(event.command.get("documents", ())))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


async def test_inserts_arriving_together_share_one_command_and_each_gets_its_own_answer(
    settings: CommonSettings, database: Any
) -> None:
    """Callers arriving while a write is under way go together in the next one; a taken `_id`,
    a taken unique field and a clash inside the group are each refused to their own caller
    only, and a document the store rejects for another reason fails its caller alone."""
    sizes = InsertSizes()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, event_listeners=[sizes]
    )
    try:
        people = client[database.name]["grouped_people"]
        await ensure_index(
            people, [("open_person", 1)], unique=True, sparse=True, name="open_person"
        )
        await people.insert_one({"_id": "taken", "open_person": "P-old"})
        sizes.sizes.clear()
        grouped = GroupedInserts(people)
        alone = asyncio.create_task(grouped.insert_once({"_id": "alone"}))
        while not sizes.sizes:  # the first caller's write has been sent
            await asyncio.sleep(0)
        together: list[Document] = [
            {"_id": "taken"},
            {"_id": "lock-clash", "open_person": "P-old"},
            {"_id": "a", "open_person": "P-new"},
            {"_id": "b", "open_person": "P-new"},
            {"_id": "bad", "$where": 1},
            *({"_id": f"n{i}"} for i in range(20)),
        ]
        answers = await asyncio.gather(
            *(grouped.insert_once(doc) for doc in together), return_exceptions=True
        )
        assert await alone is True
        assert answers[:4] == [False, False, True, False]
        assert isinstance(answers[4], WriteError)
        assert answers[5:] == [True] * 20
        assert sizes.sizes == [1, len(together)], "the first alone, the others in one command"
        assert await people.count_documents({}) == 1 + 1 + 1 + 20
        assert await grouped.insert_once({"_id": "later"}) is True
    finally:
        await client.close()


async def test_a_claimed_event_is_skipped_elsewhere_and_handed_out_again_at_its_position(
    database: Any,
) -> None:
    processed = ProcessedEvents(database, "intake")
    first = await processed.claim([Delivered("e1", "t", 0, 1), Delivered("e2", "t", 0, 2)])
    assert first == Claimed(handle={"e1", "e2"}, again=set())

    # e2 again at its own position (its offset was never committed: a crash or a rebalance),
    # e1 published a second time elsewhere, e3 new, and e3 repeated within the batch.
    second = await processed.claim(
        [
            Delivered("e2", "t", 0, 2),
            Delivered("e1", "t", 1, 7),
            Delivered("e3", "t", 0, 3),
            Delivered("e3", "t", 0, 4),
        ]
    )
    assert second == Claimed(handle={"e2", "e3"}, again={"e2"})
    other_consumer = await ProcessedEvents(database, "notify").claim([Delivered("e1", "t", 1, 7)])
    assert other_consumer.handle == {"e1"}


async def test_large_bulk_updates_do_not_lock_the_store(database: Any) -> None:
    """A 300-statement update in one command locks a FerretDB database for good; chunks don't."""
    items = database["items"]
    await items.insert_many([{"_id": i, "v": 0} for i in range(300)])
    updates = [UpdateOne({"_id": i}, {"$set": {"v": 1}}) for i in range(300)]
    async with asyncio.timeout(30):
        await bulk_write_in_chunks(items, updates, ordered=False)
        assert await items.count_documents({"v": 1}) == 300


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    settings: CommonSettings, publisher: EventPublisher, database: Any
) -> None:
    marker = uuid.uuid4().hex
    handled: list[Event[Any]] = []

    async def handler(event: Event[Any]) -> None:
        if event.subject == marker:
            handled.append(event)

    consumer = EventConsumer(
        settings,
        service="tests",
        group_id=f"tests-{marker}",
        subscribe=[topics.SLA],
        handler=handler,
        publisher=publisher,
        processed=ProcessedEvents(database, f"tests-{marker}"),
    )
    dead = AIOKafkaConsumer(
        topics.DEADLETTER, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await dead.start()
    task = asyncio.create_task(consumer.run())
    try:
        while not dead.assignment():
            await dead.getmany(timeout_ms=200)
        await publisher.producer.send_and_wait(topics.SLA, b"{not json", key=marker.encode())
        good = publisher.event(_sla(marker))
        await publisher.publish(good)
        await publisher.publish(good)
        letter: dict[str, Any] | None = None
        async with asyncio.timeout(60):
            while letter is None or not handled:
                for records in (await dead.getmany(timeout_ms=500)).values():
                    for record in records:
                        body = orjson.loads(record.value)
                        if body["subject"] == marker:
                            letter = body
        await asyncio.sleep(1)
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 30)
        await dead.stop()
    assert letter["data"]["original_topic"] == topics.SLA
    assert "not JSON" in letter["data"]["error"]
    assert [e.id for e in handled] == [good.id], "the duplicate was handled twice"


class _Commits:
    """Stands in for the group's offset commits of one partition handled directly."""

    def __init__(self) -> None:
        self.offsets: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.offsets.append(offsets)


def _sla_records(
    key: str, events: list[Event[Any]], start: int = 0
) -> list[ConsumerRecord[bytes, bytes]]:
    """The events as one partition of `permits.sla.v1` delivers them, from offset `start`."""
    return [
        ConsumerRecord(topics.SLA, 0, offset, 0, 0, key.encode(), event.to_json(), None, 0, 0, [])
        for offset, event in enumerate(events, start=start)
    ]


def _batch_consumer(
    settings: CommonSettings,
    publisher: EventPublisher,
    database: Any,
    marker: str,
    handle_batch: Any,
    **options: Any,
) -> EventConsumer:
    """A batch consumer of `permits.sla.v1` with claims of its own (its batches are handed
    to `_handle_batches` directly)."""
    return EventConsumer(
        settings,
        service="tests",
        group_id=f"tests-{marker}",
        subscribe=[topics.SLA],
        batch_handler=handle_batch,
        publisher=publisher,
        processed=ProcessedEvents(database, f"tests-{marker}"),
        **options,
    )


async def test_a_batch_the_handler_refuses_is_handled_event_by_event(
    settings: CommonSettings, publisher: EventPublisher, database: Any
) -> None:
    marker = uuid.uuid4().hex
    good, bad = publisher.event(_sla(marker)), publisher.event(_sla(marker))
    batches: list[list[str]] = []

    async def handle_batch(events: Any) -> None:
        batches.append([event.id for event in events])
        if bad.id in batches[-1]:
            raise ValueError("refused")

    consumer = _batch_consumer(settings, publisher, database, marker, handle_batch, max_attempts=1)
    commits = _Commits()
    partition = TopicPartition(topics.SLA, 0)
    await consumer._handle_batches(commits, {partition: _sla_records(marker, [good, bad])})
    assert batches == [[good.id, bad.id], [good.id], [bad.id]]
    assert commits.offsets == [{partition: 2}]
    copies = _sla_records(marker, [good, bad], start=2)
    await consumer._handle_batches(commits, {partition: copies})
    assert len(batches) == 3, "copies of handled events (new positions) were handed over again"


async def test_events_keyed_by_their_own_handling_are_handed_over_without_a_claim(
    settings: CommonSettings, publisher: EventPublisher, database: Any
) -> None:
    marker = uuid.uuid4().hex
    keyed, claimed = publisher.event(_sla(marker)), publisher.event(_sla(marker))
    batches: list[list[str]] = []

    async def handle_batch(events: Any) -> None:
        batches.append([event.id for event in events])

    consumer = _batch_consumer(
        settings,
        publisher,
        database,
        marker,
        handle_batch,
        needs_claim=lambda event: event.id == claimed.id,
    )
    partition = TopicPartition(topics.SLA, 0)
    delivered = [keyed, keyed, claimed]
    await consumer._handle_batches(_Commits(), {partition: _sla_records(marker, delivered)})
    await consumer._handle_batches(
        _Commits(), {partition: _sla_records(marker, delivered, start=3)}
    )
    assert batches == [[keyed.id, claimed.id], [keyed.id]], "a copy once per batch, unclaimed"
    stored = [doc["_id"] async for doc in database["processed_events"].find({})]
    assert stored == [f"tests-{marker}|{claimed.id}"]
