"""Who has ever been listed with a card, kept in memory, so that a first application from
someone who never held one needs no store command to be told so.

Most first applications come from people who never held a card, and asking the store whether
they hold one finds nothing at the cost of a command each. Every intake process instead keeps
the set of every holder ever listed in `holder_cards` (a superset of the people with a card in
force) and asks the store only about people in it. The set is trusted only while it is
complete; before it is loaded, while its follower reconnects and after any error, every
request asks the store as before, so being right never depends on the set.

The replicas share `permits.cards.v1`'s partitions through their views consumer group, so the
set is not filled by that consumer: a follower per process, with no group, reads every
partition. It starts where the views group has committed (every event before a committed
offset is in `holder_cards` already, since the group commits after handling), then loads the
holders the store lists, then follows; only once it has read up to the end offsets seen after
the load is the set complete. Positions first and the store second, so that nothing written
between the two is missed.

What remains is the follower's lag behind another replica's views consumer in steady state: a
card event read by that replica's consumer and written to the store before this process's
follower has read it. The follower does no store work per event, so it normally reads an event
well before any views consumer has written it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from permits_common.events import topics
from permits_common.events.envelope import PoisonMessageError, decode
from permits_common.events.models import CardIssued
from permits_common.kafka import TRANSIENT_ERRORS, connection_options
from permits_common.logs import get_logger
from permits_common.settings import CommonSettings
from permits_intake.domain.cards import apply_card_event

log = get_logger("card-holders")

LATEST_LOOKBACK_SECONDS = 300.0
"""A views group starting at "latest" that has committed nothing on a partition may still be
handling events it fetched: the follower starts this far back in time there, to read them too."""


class KnownHolders:
    """Every person (travel-permit base number, the `_id` of `holder_cards`) ever listed with a
    card, and whether the set is complete (then someone not in it holds no card)."""

    def __init__(self) -> None:
        self._listed: set[str] = set()
        self._complete = False

    @property
    def complete(self) -> bool:
        """Whether everyone the store lists is in the set."""
        return self._complete

    def may_hold_a_card(self, person: str) -> bool:
        """False only when the set is complete and the person was never listed."""
        return not self._complete or person in self._listed

    def add(self, people: Iterable[str]) -> None:
        """People listed with a card (added before the store lists them, never removed)."""
        self._listed.update(people)

    def mark_complete(self) -> None:
        self._complete = True

    def mark_incomplete(self) -> None:
        self._complete = False

    def __len__(self) -> int:
        return len(self._listed)


class CardHoldersFollower:
    """Keeps one process's `KnownHolders` complete from the store and every partition of the
    card topic; reconnects, and starts over, after any outage."""

    def __init__(
        self,
        settings: CommonSettings,
        holders: KnownHolders,
        stored_holders: Callable[[], AsyncIterator[str]],
        *,
        views_group: str,
        views_offset_reset: Literal["earliest", "latest"],
        topic: str = topics.CARDS,
    ) -> None:
        self._settings = settings
        self._holders = holders
        self._stored_holders = stored_holders
        self._views_group = views_group
        self._views_offset_reset = views_offset_reset
        self._topic = topic

    async def run(self) -> None:
        """Follow the topic until cancelled; the set is incomplete while this is not following."""
        while True:
            self._holders.mark_incomplete()
            consumer = AIOKafkaConsumer(
                **connection_options(self._settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                await self._follow(consumer)
            except TRANSIENT_ERRORS as exc:
                self._holders.mark_incomplete()
                log.warning("card holder follower interrupted, retrying", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                self._holders.mark_incomplete()
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        partitions, committed = await self._views_group_positions()
        consumer.assign(partitions)
        for partition, offset in (await self._start_positions(consumer, committed)).items():
            consumer.seek(partition, offset)
        stored = 0
        async for listed in self._stored_holders():
            self._holders.add((listed,))
            stored += 1
        ends = await consumer.end_offsets(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                self._holders.add(
                    found for record in records if (found := _holder_of(record.value))
                )
            if not self._holders.complete and await _reached(consumer, ends):
                self._holders.mark_complete()
                log.info("card holders complete", stored=stored, known=len(self._holders))

    async def _views_group_positions(
        self,
    ) -> tuple[list[TopicPartition], dict[TopicPartition, int | None]]:
        """Every partition of the topic, and where the views group has committed on each
        (None where it has not)."""
        admin = AIOKafkaAdminClient(**connection_options(self._settings))
        await admin.start()
        try:
            described = await admin.describe_topics([self._topic])
            numbers = sorted(
                entry["partition"]
                for topic in described
                if topic["topic"] == self._topic
                for entry in topic["partitions"]
            )
            if not numbers:
                raise TimeoutError(f"no partitions known for {self._topic}")
            partitions = [TopicPartition(self._topic, number) for number in numbers]
            offsets = await admin.list_consumer_group_offsets(
                self._views_group, partitions=partitions
            )
        finally:
            await admin.close()
        committed: dict[TopicPartition, int | None] = {}
        for partition in partitions:
            found = offsets.get(partition)
            committed[partition] = found.offset if found is not None and found.offset >= 0 else None
        return partitions, committed

    async def _start_positions(
        self, consumer: AIOKafkaConsumer, committed: dict[TopicPartition, int | None]
    ) -> dict[TopicPartition, int]:
        """Where the views group has committed; where it would start elsewhere (see
        `LATEST_LOOKBACK_SECONDS` for "latest")."""
        positions = {partition: at for partition, at in committed.items() if at is not None}
        fresh = [partition for partition, at in committed.items() if at is None]
        if not fresh:
            return positions
        if self._views_offset_reset == "earliest":
            beginnings: dict[TopicPartition, int] = await consumer.beginning_offsets(fresh)
            return positions | beginnings
        since = int((time.time() - LATEST_LOOKBACK_SECONDS) * 1000)
        found = await consumer.offsets_for_times({partition: since for partition in fresh})
        ends = await consumer.end_offsets(fresh)
        for partition in fresh:
            at = found.get(partition)
            positions[partition] = at.offset if at is not None else ends[partition]
        return positions


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True


def _holder_of(raw: bytes | None) -> str | None:
    """The holder a card event lists, keyed as `CardView.holder`; None for any other event and
    for a poison message (skipped: the views consumer dead-letters it, so the store never
    lists its holder either)."""
    try:
        event = decode(raw or b"")
    except PoisonMessageError:
        return None
    data = event.data
    if not isinstance(data, CardIssued):
        return None
    view = apply_card_event(None, data)
    return view.holder if view is not None else None
