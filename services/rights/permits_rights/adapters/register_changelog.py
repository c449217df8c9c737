"""The register's compacted changelog topic: written after each batch, replayed at start-up.

One record per card number (compaction keeps the newest), a few short JSON fields each, read
with a plain aiokafka consumer assigned to every partition (not a group member): every worker
holds the whole register, whichever cards.v1 partitions it processes, and keeps tailing the topic
so cards handled by other workers become verifiable within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from permits_common.domain.card import HolderStatus
from permits_common.events.topics import TopicSpec
from permits_common.kafka import TRANSIENT_ERRORS, connection_options
from permits_common.logs import get_logger
from permits_common.settings import CommonSettings
from permits_rights.domain.holder import RegisterEntry
from permits_rights.domain.register import RegisterIndex

log = get_logger("register")


def register_topic_spec(name: str) -> TopicSpec:
    """How the changelog topic is created: compacted, keyed by card number."""
    return TopicSpec(name, "card number", "Rights holder register (internal)", compacted=True)


def encode_entry(entry: RegisterEntry) -> bytes:
    """The compact record value."""
    return orjson.dumps(
        [
            entry.issue_count,
            entry.status.value,
            entry.name,
            entry.name_latin,
            entry.valid_until.isoformat() if entry.valid_until else None,
        ]
    )


def decode_entry(value: bytes) -> RegisterEntry:
    """Inverse of `encode_entry`."""
    issue_count, status, name, name_latin, until = orjson.loads(value)
    return RegisterEntry(
        issue_count,
        HolderStatus(status),
        name,
        name_latin,
        date.fromisoformat(until) if until else None,
    )


async def publish_entries(
    producer: AIOKafkaProducer, topic: str, entries: dict[str, RegisterEntry]
) -> None:
    """Append the new entries of some cards and wait for the broker."""
    futures = [
        await producer.send(topic, encode_entry(entry), key=number.encode())
        for number, entry in entries.items()
    ]
    await asyncio.gather(*futures)


class RegisterReplica:
    """Keeps an in-memory register equal to the changelog: full replay, then tail."""

    def __init__(self, settings: CommonSettings, topic: str, index: RegisterIndex) -> None:
        self._settings = settings
        self._topic = topic
        self._index = index
        self.ready = asyncio.Event()
        self.rebuild_seconds: float | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Replay then tail until stopped; reconnects after broker outages."""
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                **connection_options(self._settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=50,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
            )
            try:
                await consumer.start()
                await self._follow(consumer)
            except TRANSIENT_ERRORS as exc:
                log.warning("register replica interrupted, retrying", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(KafkaError):
                    await consumer.stop()

    def stop(self) -> None:
        """Finish after the current fetch."""
        self._stopping.set()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        partitions = await self._partitions()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        behind = {tp for tp in partitions if end[tp] > 0}
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for partition, records in batches.items():
                apply = self._index.apply
                for record in records:
                    if record.key is not None and record.value is not None:
                        apply(record.key.decode(), decode_entry(record.value))
                if partition in behind and records[-1].offset + 1 >= end[partition]:
                    behind.discard(partition)
            if not self.ready.is_set():
                for tp in list(behind):
                    if await consumer.position(tp) >= end[tp]:
                        behind.discard(tp)
                if behind:
                    continue
                self.rebuild_seconds = loop.time() - started
                self.ready.set()
                log.info(
                    "register rebuilt",
                    cards=len(self._index),
                    seconds=round(self.rebuild_seconds, 3),
                )

    async def _partitions(self) -> list[TopicPartition]:
        """The topic's partitions (a consumer without subscription has no metadata for it)."""
        admin = AIOKafkaAdminClient(**connection_options(self._settings))
        await admin.start()
        try:
            described = await admin.describe_topics([self._topic])
        finally:
            await admin.close()
        numbers = sorted(p["partition"] for d in described for p in d.get("partitions", []))
        if not numbers:
            raise KafkaError(f"topic {self._topic} not found")
        return [TopicPartition(self._topic, n) for n in numbers]
