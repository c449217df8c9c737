"""The register's compacted changelog topic: written after each batch, replayed at start-up.

One record per card number (compaction keeps the newest): the verification entry (newest issue,
status, normalised names, valid_until) and the card's whole history (every issue's status and
printed details), read with a plain aiokafka consumer assigned to every partition (not a group
member): every worker holds the whole register, whichever cards.v1 partitions it processes, and
keeps tailing the topic so cards handled by other workers become verifiable within milliseconds.
The history is what the cards agent decides on and builds feed events from, so a card event
needs no store command: it is kept as the record's bytes and decoded only for the cards a batch
touches.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from permits_common.domain.card import HolderStatus
from permits_common.events.topics import TopicSpec
from permits_common.kafka import TRANSIENT_ERRORS, connection_options
from permits_common.logs import get_logger
from permits_common.partition_batches import KeyedRecord
from permits_common.settings import CommonSettings
from permits_rights.domain.holder import (
    DETAIL_FIELDS,
    STATUS_RANK,
    Announcement,
    CardHistory,
    IssueRecord,
    RegisterEntry,
)
from permits_rights.domain.register import RegisterIndex

log = get_logger("register")


def register_topic_spec(name: str) -> TopicSpec:
    """How the changelog topic is created: compacted, keyed by card number."""
    return TopicSpec(name, "card number", "Rights holder register (internal)", compacted=True)


def _entry_fields(entry: RegisterEntry) -> list[Any]:
    return [
        entry.issue_count,
        entry.status.value,
        entry.name,
        entry.name_latin,
        entry.valid_until.isoformat() if entry.valid_until else None,
    ]


def encode_entry(entry: RegisterEntry) -> bytes:
    """A record with the verification entry only (the history is then the entry's issue)."""
    return orjson.dumps(_entry_fields(entry))


def encode_record(entry: RegisterEntry, history: CardHistory) -> bytes:
    """The compact record value: the entry, then `[issue, status, details, timeline]` per
    issue, the details in `DETAIL_FIELDS` order and the timeline as `[status, changed_at,
    published_at]` (no key names: ~0.3 kB for a card of one issue)."""
    issues = [
        [
            record.issue_count,
            record.status.value if record.status else None,
            [record.details.get(name) for name in DETAIL_FIELDS] if record.details else None,
            [[a.status.value, a.changed_at, a.published_at] for a in record.timeline],
        ]
        for record in sorted(history.issues.values(), key=lambda r: r.issue_count)
    ]
    return orjson.dumps([*_entry_fields(entry), issues])


def _entry_of(fields: list[Any]) -> RegisterEntry:
    issue_count, status, name, name_latin, until = fields[:5]
    return RegisterEntry(
        issue_count,
        HolderStatus(status),
        name,
        name_latin,
        date.fromisoformat(until) if until else None,
    )


def _issues_of(fields: list[Any]) -> list[list[Any]]:
    """The record's issues; a record without history stands for its entry's issue."""
    if len(fields) > 5:
        issues: list[list[Any]] = fields[5]
        return issues
    return [[fields[0], fields[1], None, []]]


def decode_entry(value: bytes) -> RegisterEntry:
    """The verification entry of a record."""
    return _entry_of(orjson.loads(value))


def decode_history(card_number: str, value: bytes) -> CardHistory:
    """The card's history as a record holds it (nothing `touched`)."""
    history = CardHistory(card_number)
    for issue_count, status, details, timeline in _issues_of(orjson.loads(value)):
        history.issues[issue_count] = IssueRecord(
            issue_count,
            HolderStatus(status) if status else None,
            dict(zip(DETAIL_FIELDS, details, strict=True)) if details else {},
            [
                Announcement(
                    HolderStatus(reached),
                    datetime.fromisoformat(changed_at),
                    datetime.fromisoformat(published_at) if published_at else None,
                )
                for reached, changed_at, published_at in timeline
            ],
        )
    return history


class RegisterRecords:
    """The newest record of every card number as bytes, plus the number of card issues at each
    status (what reconciliation compares the agencies with). Records merge monotonically, so
    the agent's own copy and the tail's later copy of the same record never move a card back."""

    def __init__(self, index: RegisterIndex) -> None:
        self.index = index
        self._records: dict[str, bytes] = {}
        self._issues_by_status: dict[str, int] = dict.fromkeys(
            (status.value for status in HolderStatus), 0
        )

    def __len__(self) -> int:
        return len(self._records)

    def history(self, card_number: str) -> CardHistory:
        """The card's history (empty for a card never seen)."""
        value = self._records.get(card_number)
        return decode_history(card_number, value) if value else CardHistory(card_number)

    def status_of(self, card_number: str, issue_count: int) -> str | None:
        """One issue's status now, if known."""
        record = self.history(card_number).issues.get(issue_count)
        return record.status.value if record and record.status else None

    def issues_by_status(self) -> dict[str, int]:
        """Card issues at each status."""
        return dict(self._issues_by_status)

    def apply(self, card_number: str, value: bytes) -> None:
        """Take in one changelog record (the agent's own, or one read from the topic)."""
        fields = orjson.loads(value)
        self.index.apply(card_number, _entry_of(fields))
        current = self._records.get(card_number)
        if current == value:
            return
        issues = _issues_of(fields)
        counts = self._issues_by_status
        if current is None:
            self._records[card_number] = _compact(value)
            for issue in issues:
                if issue[1]:
                    counts[issue[1]] += 1
            return
        held = _issues_of(orjson.loads(current))
        if _covers(issues, held):
            self._records[card_number] = _compact(value)
            for issue in held:
                if issue[1]:
                    counts[issue[1]] -= 1
            for issue in issues:
                if issue[1]:
                    counts[issue[1]] += 1
            return
        merged = decode_history(card_number, current)
        for status in merged.statuses():
            counts[status.value] -= 1
        merged.merge(decode_history(card_number, value))
        for status in merged.statuses():
            counts[status.value] += 1
        entry = merged.entry()
        self._records[card_number] = _compact(
            encode_record(entry, merged) if entry is not None else value
        )


def _covers(newer: list[list[Any]], held: list[list[Any]]) -> bool:
    """True when a record's issues say everything the held ones say (the usual case: the same
    worker's next record of the card), so it replaces them without a full merge."""
    by_issue = {issue[0]: issue for issue in newer}
    for issue_count, status, details, timeline in held:
        other = by_issue.get(issue_count)
        if other is None or (details and not other[2]):
            return False
        if status and (not other[1] or _rank(other[1]) < _rank(status)):
            return False
        published = {reached: at for reached, _, at in other[3]}
        if any(
            reached not in published or (at and not published[reached])
            for reached, _, at in timeline
        ):
            return False
    return True


def _rank(status: str) -> int:
    return STATUS_RANK[HolderStatus(status)]


def _compact(value: bytes) -> bytes:
    """An exact-size copy: orjson's output keeps its whole ~4 kB buffer, ten times the record,
    which for a million cards held in memory is gigabytes (measured: 4.1 GB against 0.4 GB)."""
    return bytes(memoryview(value))


def changelog_records(topic: str, records: dict[str, bytes]) -> list[KeyedRecord]:
    """The new records of some cards as Kafka records (keyed by card number, so compaction
    keeps each card's newest)."""
    return [(topic, number.encode(), value) for number, value in records.items()]


class RegisterReplica:
    """Keeps the in-memory register equal to the changelog: full replay, then tail."""

    def __init__(self, settings: CommonSettings, topic: str, records: RegisterRecords) -> None:
        self._settings = settings
        self._topic = topic
        self._records = records
        self.ready = asyncio.Event()
        self.rebuild_seconds: float | None = None
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Replay then tail until stopped; reconnects after broker outages."""
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                **connection_options(self._settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # New records end the broker's wait at once; the wait only bounds how often an
                # idle replica asks (at 50 ms, 20 fetch requests a second, most of the broker's
                # fetches when the platform is idle).
                fetch_max_wait_ms=500,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
            )
            try:
                await consumer.start()
                self._consumer = consumer
                await self._follow(consumer)
            except TRANSIENT_ERRORS as exc:
                log.warning("register replica interrupted, retrying", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                self._consumer = None
                with contextlib.suppress(KafkaError):
                    await consumer.stop()

    def stop(self) -> None:
        """Finish after the current fetch."""
        self._stopping.set()

    async def catch_up(self) -> None:
        """Wait until every record on the topic now is applied. After a rebalance this worker
        may take over cards that another worker wrote a moment ago, and must decide on them
        with that worker's records."""
        while True:
            await self.ready.wait()
            consumer = self._consumer
            try:
                if consumer is not None and await self._holds_everything(consumer):
                    return
            except TRANSIENT_ERRORS as exc:
                log.warning("register catch-up interrupted, retrying", error=type(exc).__name__)
            await asyncio.sleep(0.05)

    @staticmethod
    async def _holds_everything(consumer: AIOKafkaConsumer) -> bool:
        """Every record the topic holds now has been returned, hence applied (`_follow` applies
        what `getmany` returns before it awaits anything else)."""
        partitions = list(consumer.assignment())
        if not partitions:
            return False
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            if await consumer.position(tp) < end[tp]:
                return False
        return True

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        partitions = await self._partitions()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        behind = {tp for tp in partitions if end[tp] > 0}
        apply = self._records.apply
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for partition, records in batches.items():
                for record in records:
                    if record.key is not None and record.value is not None:
                        apply(record.key.decode(), record.value)
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
                    cards=len(self._records),
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
