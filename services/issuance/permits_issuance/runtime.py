"""Everything one issuance process holds: settings, clocks, store, publisher and use cases.

Started lazily by whichever Faust agent, timer or HTTP request needs it first, so nothing
depends on the order in which Faust starts its services.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymongo import AsyncMongoClient

from permits_common.clock import Clock
from permits_common.domain.calendar import official_arrangement
from permits_common.domain.travel_permit import base_number
from permits_common.events.envelope import Event
from permits_common.events.models import (
    ApplicationAccepted,
    ApplicationExtensionGranted,
    CalendarLoaded,
)
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.logs import get_logger
from permits_common.mongo import Document, ProcessedEvents, mongo_client
from permits_issuance.adapters.production_centre import ProductionCentreClient
from permits_issuance.adapters.store import IssuanceStore
from permits_issuance.config import IssuanceSettings
from permits_issuance.service.approval import ApprovalService
from permits_issuance.service.calendar import CalendarHolder
from permits_issuance.service.deadlines import DeadlineService
from permits_issuance.service.extensions import DeadlineExtensions
from permits_issuance.service.issue import IssueService
from permits_issuance.service.production import ProductionService
from permits_issuance.service.register import RegisterService

SERVICE = "issuance"
SOURCE = "permits-issuance"
log = get_logger("runtime")


class IssuanceRuntime:
    """The process's resources and use cases, wired once."""

    def __init__(self, settings: IssuanceSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.wall_clock = Clock()
        """Operational timing (retries, timeouts) follows real time, never the moved clock."""
        self.client: AsyncMongoClient[Document] = mongo_client(settings)
        self.store = IssuanceStore(self.client[settings.mongo_database])
        self.publisher = EventPublisher(settings, SOURCE)
        self.centre = ProductionCentreClient(
            settings.production_centre_url,
            settings.production_callback_secret.get_secret_value().encode(),
            settings.production_request_timeout_seconds,
        )
        self.calendar = CalendarHolder()
        self.deadlines = DeadlineService(
            self.store, self.publisher, self.calendar, self.clock, settings.at_risk_working_days
        )
        self.extensions = DeadlineExtensions(
            self.store, self.publisher, self.calendar, self.clock, settings.at_risk_working_days
        )
        self.issue = IssueService(self.store, self.publisher, self.clock, self.deadlines)
        self.production = ProductionService(
            self.store, self.publisher, self.wall_clock, self.centre, settings, self.issue
        )
        self.approval = ApprovalService(
            self.store, self.publisher, self.clock, self.deadlines, self.production
        )
        self.register = RegisterService(self.store, self.publisher, self.clock)
        self._started = False
        self.stopping = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._lock = asyncio.Lock()
        self._deadline_lock = asyncio.Lock()
        self._expiry_lock = asyncio.Lock()

    def processed(self, topic_name: str) -> ProcessedEvents:
        """The dedup log of one of this worker group's consumers."""
        return ProcessedEvents(self.store.database, f"{self.settings.issuance_group}:{topic_name}")

    async def ensure_started(self) -> None:
        """Connect everything once; retried by callers while Kafka or the store is down."""
        if self._started:
            return
        async with self._lock:
            if self._started:
                return
            await ensure_topics(self.settings)
            await self.store.ensure_indexes()
            for arrangement in await self.store.load_calendar_years():
                self.calendar.load(arrangement)
            await self.publisher.start()
            await self.centre.start()
            self._started = True
            log.info("issuance runtime started", group=self.settings.issuance_group)

    @contextlib.asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        """Marks an event in progress, so shutdown lets it finish before closing connections."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let events in progress finish, then flush and close."""
        self.stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        if self._started:
            await self.publisher.stop()
            await self.centre.stop()
            self._started = False
        await self.client.close()

    def wants_application_event(self, event: Event[Any]) -> bool:
        """Acceptances and extension grants need issuance; the rest are its own or intake's."""
        data = event.data
        return isinstance(
            data, ApplicationAccepted | ApplicationExtensionGranted
        ) and data.application_id.startswith(self.settings.issuance_only_application_prefix)

    async def handle_application_event(self, event: Event[Any], redelivered: bool = True) -> None:
        """Decide an accepted application or move a due date by a granted extension (other
        application events are not for issuance)."""
        if not self.wants_application_event(event):
            return
        data = event.data
        if isinstance(data, ApplicationAccepted):
            await self.approval.handle_accepted(data, redelivered=redelivered)
        else:
            await self.extensions.grant(event.id, data)

    def fresh_acceptances(self, events: Sequence[Event[Any]], again: set[str]) -> list[Event[Any]]:
        """The acceptances of a batch that `approval.handle_fresh_batch` may decide together:
        claimed for the first time, the only event of their application in the batch, and the
        only one of their person (the others go one by one, in order, as before)."""
        per_subject = Counter(event.subject for event in events)
        people: set[str] = set()
        fresh = []
        for event in events:
            data = event.data
            if (
                not isinstance(data, ApplicationAccepted)
                or not self.wants_application_event(event)
                or event.id in again
                or per_subject[event.subject] > 1
            ):
                continue
            base = base_number(data.applicant.travel_permit_number)
            if base not in people:
                people.add(base)
                fresh.append(event)
        return fresh

    async def handle_calendar_event(self, event: Event[Any]) -> None:
        """An operator loaded or corrected a year: count with it and move the open deadlines
        that depend on it."""
        data = event.data
        if not isinstance(data, CalendarLoaded):
            return
        arrangement = official_arrangement(data.year, data.holidays, data.workdays)
        await self.store.save_calendar_year(data.year, data.holidays, data.workdays)
        self.calendar.load(arrangement)
        moved = await self.deadlines.reschedule_year(data.year)
        log.info("calendar year loaded", year=data.year, rescheduled=moved)

    async def deadline_pass(self) -> int:
        """Warnings and breaches due today; returns how many events were raised."""
        async with self._deadline_lock:
            return await self.deadlines.timer_pass()

    async def expiry_pass(self) -> int:
        """Cards past their last valid day; returns how many expired."""
        async with self._expiry_lock:
            return await self.register.expire_due()

    async def timer_pass(self) -> int:
        """Every date-driven pass at once (start-up, and after the dev clock moved)."""
        return await self.deadline_pass() + await self.expiry_pass()
