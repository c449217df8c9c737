"""Every intake replica follows `permits.calendar.v1` on its own (no consumer group), so a year
an operator loads through any replica is used by all of them at once.

The year is stored before its event is published; the follower reloads stored years when it
(re)connects, so nothing loaded while it was away is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from permits_common.domain.calendar import YearArrangement, official_arrangement
from permits_common.events import topics
from permits_common.events.envelope import PoisonMessageError, decode
from permits_common.events.models import CalendarLoaded
from permits_common.kafka import TRANSIENT_ERRORS, connection_options
from permits_common.logs import get_logger
from permits_common.settings import CommonSettings

log = get_logger("calendar")


class CalendarFollower:
    """Applies every `calendar.loaded` to this process's calendar."""

    def __init__(
        self,
        settings: CommonSettings,
        reload_stored: Callable[[], Awaitable[None]],
        apply: Callable[[YearArrangement], None],
    ) -> None:
        self._settings = settings
        self._reload_stored = reload_stored
        self._apply = apply

    async def run(self) -> None:
        """Follow the topic until cancelled; reconnect after outages."""
        while True:
            consumer = AIOKafkaConsumer(
                topics.CALENDAR,
                **connection_options(self._settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
            try:
                await consumer.start()
                await self._pin_positions(consumer)
                await self._reload_stored()
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for records in batches.values():
                        for record in records:
                            self._handle(record.value or b"")
            except TRANSIENT_ERRORS as exc:
                log.warning("calendar follower interrupted, retrying", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    @staticmethod
    async def _pin_positions(consumer: AIOKafkaConsumer) -> None:
        """Resolve "latest" before reading the store, so no load falls between the two."""
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        for partition in consumer.assignment():
            await consumer.position(partition)

    def _handle(self, raw: bytes) -> None:
        try:
            event = decode(raw)
        except PoisonMessageError:
            return
        data = event.data
        if isinstance(data, CalendarLoaded):
            try:
                self._apply(official_arrangement(data.year, data.holidays, data.workdays))
            except ValueError as exc:
                log.error("invalid calendar.loaded ignored", year=data.year, error=str(exc))
