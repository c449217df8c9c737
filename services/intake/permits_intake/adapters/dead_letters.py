"""The dead-letter topic as the operator sees it: how many messages it holds and the newest few.

Every consumer of the platform moves what it cannot process to one topic
(`permits.deadletter.v1`), so one reader answers for all services. It reads without a consumer
group (nothing is committed, nothing is taken from anyone) and reports ids only: the original
topic, partition, offset and key (an application id or card number), the consumer that gave up
and the service that published the dead letter. The raw message and the error text stay on the
topic: either may carry personal data.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from permits_common.events.envelope import PoisonMessageError, decode
from permits_common.events.models import DeadLetter
from permits_common.kafka import connection_options
from permits_common.settings import CommonSettings

READ_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One dead letter, by reference only."""

    event_id: str | None
    at: datetime
    source: str | None
    consumer: str | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    original_key: str | None
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """What the topic holds now (after retention), and its newest messages, newest first."""

    topic: str
    total: int
    recent: list[DeadLetterRow]


def _row(record: ConsumerRecord[bytes, bytes]) -> DeadLetterRow:
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    try:
        event = decode(record.value or b"")
    except PoisonMessageError:
        event = None
    if event is None or not isinstance(event.data, DeadLetter):
        key = record.key.decode("utf-8", "replace") if record.key else None
        return DeadLetterRow(
            None, at, None, None, None, None, None, key, record.partition, record.offset
        )
    data = event.data
    return DeadLetterRow(
        event_id=event.id,
        at=event.time,
        source=event.source,
        consumer=data.consumer,
        original_topic=data.original_topic,
        original_partition=data.original_partition,
        original_offset=data.original_offset,
        original_key=data.original_key,
        partition=record.partition,
        offset=record.offset,
    )


async def read_dead_letters(settings: CommonSettings, topic: str, recent: int) -> DeadLetterSummary:
    """Count the topic's messages and read the newest `recent` of them.

    Raises the broker's errors (or TimeoutError) when Kafka cannot be read in time.
    """
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await asyncio.wait_for(_read(consumer, topic, recent), READ_TIMEOUT_SECONDS)
    finally:
        await consumer.stop()


async def _read(consumer: AIOKafkaConsumer, topic: str, recent: int) -> DeadLetterSummary:
    await consumer._client.force_metadata_update()
    numbers = consumer.partitions_for_topic(topic) or set()
    partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
    if not partitions:
        return DeadLetterSummary(topic, 0, [])
    beginnings = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    total = sum(ends[p] - beginnings[p] for p in partitions)
    consumer.assign(partitions)
    wanted = {p: ends[p] for p in partitions if ends[p] > beginnings[p]}
    for partition in partitions:
        consumer.seek(partition, max(beginnings[partition], ends[partition] - recent))
    rows: list[DeadLetterRow] = []
    while wanted and recent > 0:
        batches = await consumer.getmany(*wanted, timeout_ms=500)
        for partition, records in batches.items():
            rows += [_row(r) for r in records if r.offset < ends[partition]]
        for partition in list(wanted):
            if await consumer.position(partition) >= wanted[partition]:
                del wanted[partition]
    rows.sort(key=lambda row: (row.at, row.partition, row.offset), reverse=True)
    return DeadLetterSummary(topic, total, rows[:recent])
