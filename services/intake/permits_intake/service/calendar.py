"""The working-day calendar intake computes due dates with, and operators' yearly loads.

The calendar object is immutable; loading a year swaps the reference, so a request computing a
due date never sees half a year.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date

from permits_common.clock import Clock
from permits_common.domain.calendar import (
    CalendarStamp,
    DueDate,
    WorkingDayCalendar,
    YearArrangement,
    official_arrangement,
)
from permits_common.events.envelope import derived_event_id
from permits_common.events.models import CalendarLoaded
from permits_common.kafka import EventPublisher
from permits_intake.adapters.store import IntakeStore


class CalendarBook:
    """The current calendar: built-in data plus every year operators loaded."""

    def __init__(self) -> None:
        self.calendar = WorkingDayCalendar()

    def load(self, arrangements: Iterable[YearArrangement]) -> None:
        """Add several official arrangements at once (start-up)."""
        calendar = self.calendar
        for arrangement in arrangements:
            calendar = calendar.with_year(arrangement)
        self.calendar = calendar

    def due_date(self, accepted_on: date) -> DueDate:
        """The 20th working day after acceptance, and whether it is still provisional."""
        return self.calendar.due_date(accepted_on)

    def stamp(self, accepted_on: date, due_date: date) -> CalendarStamp:
        """The calendar behind a due date: its version and which years are official."""
        return self.calendar.stamp(accepted_on, due_date)


def calendar_loaded_event_id(arrangement: YearArrangement) -> str:
    """Loading the same arrangement twice is one fact, so it gets one event id."""
    content = ",".join(sorted(d.isoformat() for d in arrangement.holidays))
    content += "|" + ",".join(sorted(d.isoformat() for d in arrangement.workdays))
    digest = hashlib.sha256(content.encode()).hexdigest()
    return derived_event_id("calendar.loaded", arrangement.year, digest)


class CalendarLoading:
    """An operator loads a year's official arrangement; issuance recomputes provisional dates."""

    def __init__(
        self, store: IntakeStore, book: CalendarBook, clock: Clock, publisher: EventPublisher
    ) -> None:
        self._store = store
        self._book = book
        self._clock = clock
        self._publisher = publisher

    async def load_year(
        self, year: int, holidays: Iterable[date], workdays: Iterable[date]
    ) -> YearArrangement:
        """Validate, store, use, and announce (ValueError when the arrangement is invalid).
        Loading an arrangement that was already loaded and announced changes nothing and
        publishes nothing; one whose announcement failed is announced again."""
        arrangement = official_arrangement(year, holidays, workdays)
        event_id = calendar_loaded_event_id(arrangement)
        if await self._store.calendar_year_announced(year, event_id):
            return arrangement
        await self._store.save_calendar_year(arrangement, self._clock.now())
        self._book.load([arrangement])
        data = CalendarLoaded(
            year=year,
            holidays=sorted(arrangement.holidays),
            workdays=sorted(arrangement.workdays),
        )
        event = self._publisher.event(data, event_id=event_id)
        await self._publisher.publish(event)
        await self._store.mark_calendar_year_announced(year, event_id)
        return arrangement
