"""Use cases behind the staff pages: a point's worklist, the operator's overview, the calendar.

Read-only: they list what the status views already hold and count with the calendar intake
uses for due dates. A clerk bound to one acceptance point sees that point only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from permits_common.clock import Clock
from permits_common.domain.calendar import official_arrangement
from permits_common.web.auth import Principal
from permits_intake.adapters.open_applications import open_applications
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.overview import (
    CalendarYear,
    MovedDueDate,
    OpenApplication,
    Page,
    PointTally,
    WorklistOrder,
    calendar_years,
    moved_due_dates,
    nearest_deadlines,
    open_application,
    page_of,
    tallies,
)
from permits_intake.service.calendar import CalendarBook


class UnknownPointError(LookupError):
    """No acceptance point has this code."""


class PointNotAllowedError(PermissionError):
    """A clerk of one acceptance point asked for another point's applications."""


@dataclass(frozen=True, slots=True)
class Overview:
    """The operator's first page: tallies per point and the deadlines coming first."""

    points: list[PointTally]
    nearest: list[OpenApplication]


class StaffOverview:
    """Lists and counts over the open applications, as of the service clock's today."""

    def __init__(
        self,
        store: IntakeStore,
        clock: Clock,
        book: CalendarBook,
        points: Sequence[str],
    ) -> None:
        self._store = store
        self._clock = clock
        self._book = book
        self._points = list(points)

    async def _rows(self, point: str | None = None) -> list[OpenApplication]:
        today = self._clock.today()
        calendar = self._book.calendar
        return [
            open_application(doc, today, calendar)
            for doc in await open_applications(self._store, point)
        ]

    async def worklist(
        self,
        principal: Principal,
        point: str,
        order: WorklistOrder,
        descending: bool,
        page: int,
        per_page: int,
    ) -> Page:
        """One point's open applications, sorted and paged."""
        if point not in self._points:
            raise UnknownPointError(point)
        if principal.kind == "clerk" and not principal.may_act_for_point(point):
            raise PointNotAllowedError(point)
        return page_of(await self._rows(point), order, descending, page, per_page)

    async def overview(self, nearest: int) -> Overview:
        """Open, at risk and breached per point, and the `nearest` deadlines of the city."""
        rows = await self._rows()
        return Overview(tallies(rows, self._points), nearest_deadlines(rows, nearest))

    async def calendar_years(self) -> list[CalendarYear]:
        """The years open due dates are counted through, official or provisional."""
        return calendar_years(await self._rows(), self._book.calendar, self._clock.today())

    async def preview(
        self, year: int, holidays: Iterable[date], workdays: Iterable[date]
    ) -> list[MovedDueDate]:
        """Open due dates a year's arrangement would move if loaded now (ValueError when the
        arrangement is invalid, as loading it would be)."""
        candidate = official_arrangement(year, holidays, workdays)
        return moved_due_dates(await self._rows(), self._book.calendar, candidate)
