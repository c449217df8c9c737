"""The trail writer: reads the audit topic and appends each partition to its own chain.

Where to read from is kept in the store, with the entries: when a partition is assigned, the
consumer seeks to the offset after the chain's last stored entry, so a crash between storing
and committing neither loses nor doubles an entry. Offsets are still committed, for lag
monitoring by the usual Kafka tools: every partition in one request at most once every
`COMMIT_EVERY_SECONDS` (one request per partition batch was a third of the broker's offset
commits in the pipeline benchmark).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from permits_audit.service.metrics import CONSUMER_LAG
from permits_audit.service.trail import Record, TrailWriter
from permits_common.events.envelope import PoisonMessageError, decode
from permits_common.events.models import AuditAccess
from permits_common.kafka import ConsumerLoop, EventPublisher, connection_options
from permits_common.metrics import EVENTS_CONSUMED
from permits_common.settings import CommonSettings

SERVICE = "audit"
COMMIT_EVERY_SECONDS = 1.0


class _SeekToChainHead(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: TrailConsumer) -> None:
        self._owner = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self._owner.writer.forget(tp.partition)
            CONSUMER_LAG.labels(str(tp.partition)).set(0)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self._owner.consumer
        assert consumer is not None
        for tp in assigned:
            position = await self._owner.writer.position(tp.partition)
            if position == 0 and self._owner.offset_reset == "latest":
                continue
            consumer.seek(tp, position)
            self._owner.positions[tp] = position


class TrailConsumer(ConsumerLoop):
    """A consumer-group member that appends what it reads to the trail (the shared loop's
    reconnects and clean leaving; its own positions, kept with the chain)."""

    def __init__(
        self,
        settings: CommonSettings,
        *,
        topic: str,
        group_id: str,
        writer: TrailWriter,
        publisher: EventPublisher,
        offset_reset: Literal["earliest", "latest"] = "earliest",
    ) -> None:
        super().__init__(group_id)
        self._settings = settings
        self.offset_reset = offset_reset
        self._topic = topic
        self.writer = writer
        self._publisher = publisher
        self.positions: dict[TopicPartition, int] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The connected consumer, None between runs."""
        return self._consumer

    async def _run_once(self) -> None:
        """Store and broker outages end a run; the next one starts from the stored head."""
        consumer = AIOKafkaConsumer(
            **connection_options(self._settings),
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.offset_reset,
            max_poll_records=2000,
        )
        self._consumer = consumer
        await consumer.start()
        consumer.subscribe([self._topic], listener=_SeekToChainHead(self))
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for partition, records in batches.items():
                await self._append(partition, records)
            await self._commit_now_and_then(consumer)
            for partition in consumer.assignment():
                self._report_lag(partition)

    async def _commit_now_and_then(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the stored positions of the partitions still assigned, all in one request,
        unless the last commit was less than `COMMIT_EVERY_SECONDS` ago."""
        now = time.monotonic()
        if not self._uncommitted or now - self._committed_at < COMMIT_EVERY_SECONDS:
            return
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in assigned}
        self._uncommitted.clear()
        self._committed_at = now
        if offsets:
            await consumer.commit(offsets)

    async def _append(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        entries: list[Record] = []
        for record in records:
            try:
                event = decode(record.value or b"")
                if not isinstance(event.data, AuditAccess):
                    raise PoisonMessageError(f"not an audit entry: {event.type}")
            except PoisonMessageError as exc:
                EVENTS_CONSUMED.labels(SERVICE, record.topic, "deadletter").inc()
                await self._publisher.dead_letter(record, self._group_id, str(exc))
                continue
            entries.append((record.offset, event))  # type: ignore[arg-type]
        stored = await self.writer.append(partition.partition, entries)
        EVENTS_CONSUMED.labels(SERVICE, partition.topic, "processed").inc(stored)
        EVENTS_CONSUMED.labels(SERVICE, partition.topic, "duplicate").inc(len(entries) - stored)
        self.positions[partition] = records[-1].offset + 1
        self._uncommitted[partition] = records[-1].offset + 1

    def _report_lag(self, partition: TopicPartition) -> None:
        consumer: Any = self.consumer
        highwater = consumer.highwater(partition)
        position = self.positions.get(partition)
        if highwater is not None and position is not None:
            CONSUMER_LAG.labels(str(partition.partition)).set(max(0, highwater - position))
