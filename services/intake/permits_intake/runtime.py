"""Wiring: the store, Kafka publisher and consumer, outbox relay and use cases of one process.

Start-up never blocks on Kafka or the store: both are retried with backoff in the background
while `/healthz` answers and `/readyz` says 503; requests that need what is missing get 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

from pymongo.errors import PyMongoError

from permits_common.audit import AuditTrail
from permits_common.clock import Clock
from permits_common.events import topics
from permits_common.kafka import (
    TRANSIENT_ERRORS,
    EventConsumer,
    EventPublisher,
    ensure_topics,
    kafka_reachable,
)
from permits_common.logs import get_logger
from permits_common.mongo import ProcessedEvents, mongo_client, ping
from permits_common.reference import acceptance_points
from permits_common.web.problems import RETRY_AFTER_SECONDS, ProblemError
from permits_intake.adapters.calendar_follower import CalendarFollower
from permits_intake.adapters.card_holders import CardHoldersFollower
from permits_intake.adapters.outbox import OutboxRelay
from permits_intake.adapters.store import IntakeStore
from permits_intake.config import IntakeSettings
from permits_intake.domain.eligibility import normalized_district
from permits_intake.service.applications import SOURCE, ApplicationIntake
from permits_intake.service.calendar import CalendarBook, CalendarLoading
from permits_intake.service.cards import CardActions
from permits_intake.service.dispatch import CardDispatch
from permits_intake.service.extensions import DeadlineExtension
from permits_intake.service.views import StatusViews, needs_claim

log = get_logger("intake")

CONSUMED_TOPICS = (topics.APPLICATIONS, topics.SLA, topics.CARDS)
MAX_BACKOFF_SECONDS = 5.0


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for its end, cancelling again if the cancellation
    was swallowed (PyMongo's server selection can swallow one while the store is down)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def unavailable(what: str) -> ProblemError:
    """503 with Retry-After: a dependency is not (yet) reachable."""
    return ProblemError(
        503,
        "service_unavailable",
        "Service unavailable",
        f"{what} is not reachable yet; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class IntakeRuntime:
    """Everything one intake process runs, started and stopped by the app's lifespan."""

    def __init__(self, settings: IntakeSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.points = acceptance_points()
        self.client = mongo_client(settings)
        self.database = self.client[settings.mongo_database]
        self.store = IntakeStore(self.database)
        self.publisher = EventPublisher(settings, SOURCE)
        self.audit = AuditTrail(
            self.publisher,
            service="intake",
            topic=settings.audit_topic,
            timeout_seconds=settings.audit_publish_timeout_seconds,
        )
        self.calendar = CalendarBook()
        self.relay = OutboxRelay(
            self.store,
            self.publisher,
            clock=self.clock,
            batch_size=settings.outbox_batch_size,
            sweep_seconds=settings.outbox_sweep_seconds,
        )
        self.applications = ApplicationIntake(
            self.store,
            self.clock,
            self.calendar,
            publisher=self.publisher,
            known_points=frozenset(point.code for point in self.points),
            jinan_districts=frozenset(normalized_district(p.district) for p in self.points),
            outbox=self.relay,
        )
        self.dispatch = CardDispatch(self.store, self.clock, self.publisher)
        self.extension = DeadlineExtension(self.store, self.clock, self.calendar, self.publisher)
        self.views = StatusViews(self.store)
        self.calendar_follower = CalendarFollower(
            settings, self._reload_calendar, lambda year: self.calendar.load([year])
        )
        self.card_holders = CardHoldersFollower(
            settings,
            self.store.known_holders,
            self.store.holder_ids,
            views_group=settings.intake_group,
            views_offset_reset=settings.intake_offset_reset,
        )
        self.cards = CardActions(self.store, self.clock, self.publisher)
        self.calendar_loading = CalendarLoading(
            self.store, self.calendar, self.clock, self.publisher
        )
        self.consumer = EventConsumer(
            settings,
            service=SOURCE,
            group_id=settings.intake_group,
            subscribe=CONSUMED_TOPICS,
            batch_handler=self.views.handle_batch,
            needs_claim=needs_claim,
            publisher=self.publisher,
            processed=ProcessedEvents(self.database, settings.intake_group),
            offset_reset=settings.intake_offset_reset,
        )
        self.store_prepared = asyncio.Event()
        self.publisher_started = asyncio.Event()
        self._kafka_seen: tuple[float, bool] = (0.0, False)
        self._kafka_probe: asyncio.Task[bool] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # Life cycle.

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        self._spawn(self._prepare_store(), "prepare-store")
        self._spawn(self._prepare_kafka(), "prepare-kafka")

    async def stop(self) -> None:
        """Stop consuming and relaying, flush the producer, close the store client."""
        await self.consumer.stop()
        for task in self._tasks:
            await _cancelled(task)
        if self._kafka_probe is not None:
            self._kafka_probe.cancel()
        await self.audit.stop()
        with contextlib.suppress(Exception):
            await self.publisher.stop()
        await self.client.close()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=f"intake-{name}"))

    async def _prepare_store(self) -> None:
        failures = 0
        while True:
            try:
                await self.store.ensure_indexes()
                await self.store.upsert_points(self.points)
                await self._reload_calendar()
            except PyMongoError as exc:
                failures += 1
                log.warning("store not ready, retrying", error=type(exc).__name__)
                await asyncio.sleep(min(0.2 * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            self.store_prepared.set()
            log.info("store ready", loaded_years=self.calendar.calendar.loaded_years)
            return

    async def _prepare_kafka(self) -> None:
        failures = 0
        while True:
            try:
                await ensure_topics(self.settings)
                await self.publisher.start()
            except TRANSIENT_ERRORS as exc:
                failures += 1
                log.warning("Kafka not ready, retrying", error=type(exc).__name__)
                await asyncio.sleep(min(0.2 * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            break
        self.audit.start()
        self.publisher_started.set()
        self._kafka_seen = (time.monotonic(), True)
        await self.store_prepared.wait()
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(self.consumer.run(), "status-views")
        self._spawn(self.calendar_follower.run(), "calendar-follower")
        self._spawn(self.card_holders.run(), "card-holders")
        log.info("Kafka ready; relay and views running")

    async def _reload_calendar(self) -> None:
        self.calendar.load(await self.store.calendar_arrangements())

    # Readiness.

    async def store_reachable(self) -> bool:
        """`/readyz`: the store answers and the intake's data is prepared."""
        return self.store_prepared.is_set() and await ping(self.database)

    async def kafka_ready(self) -> bool:
        """`/readyz`: the broker answers (checked at most about once a second)."""
        if not self.publisher_started.is_set():
            return False
        if self._kafka_stale():
            return await self._refresh_kafka()
        return self._kafka_seen[1]

    def kafka_known_up(self) -> bool:
        """Request path: the last known broker state, never waiting; refreshed behind."""
        if not self.publisher_started.is_set():
            return False
        if self._kafka_stale() and (self._kafka_probe is None or self._kafka_probe.done()):
            self._kafka_probe = asyncio.create_task(self._refresh_kafka())
        return self._kafka_seen[1]

    def _kafka_stale(self) -> bool:
        return time.monotonic() - self._kafka_seen[0] > self.settings.kafka_check_cache_seconds

    async def _refresh_kafka(self) -> bool:
        up = await kafka_reachable(self.settings, wait_seconds=2.0)
        self._kafka_seen = (time.monotonic(), up)
        return up

    # Guards for request handlers.

    def require_store(self) -> None:
        """503 until indexes, reference data and calendar years are loaded."""
        if not self.store_prepared.is_set():
            raise unavailable("The store")

    def require_kafka(self) -> None:
        """503 while the producer is not connected or the broker was last seen down."""
        if not self.kafka_known_up():
            raise unavailable("Kafka")
