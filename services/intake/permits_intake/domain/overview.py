"""What staff see of the open applications: a point's worklist, tallies per point, the calendar.

Pure functions over the stored views and a working-day calendar, so the console's lists and the
operator's "how many due dates would move" preview are decided here, not in a template. The
deadline standing shown is the effective one (`effective_sla`): an application past its due date
counts as breached even before the event saying so arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from permits_common.domain.calendar import WorkingDayCalendar, YearArrangement
from permits_common.domain.card import ApplicationKind, ApplicationStatus, SlaState
from permits_intake.domain.progress import effective_sla


class WorklistOrder(StrEnum):
    """How a worklist may be sorted."""

    DUE_DATE = "due_date"
    ACCEPTED_ON = "accepted_on"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class OpenApplication:
    """One open application as staff lists show it: no personal data, only its progress."""

    id: str
    kind: ApplicationKind
    acceptance_point: str
    status: ApplicationStatus
    accepted_on: date
    due_date: date
    due_date_provisional: bool
    sla: SlaState
    working_days_left: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a sorted list, and how many there are in all."""

    items: list[OpenApplication]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True, slots=True)
class PointTally:
    """Open applications of one acceptance point and how many stand at risk or breached."""

    point: str
    open: int
    at_risk: int
    breached: int


@dataclass(frozen=True, slots=True)
class CalendarYear:
    """A year of the calendar, whether its arrangement is official, and how many open
    applications' due dates were counted through it."""

    year: int
    official: bool
    loaded: bool
    open_due_dates: int


@dataclass(frozen=True, slots=True)
class MovedDueDate:
    """An open application whose due date a candidate arrangement would change."""

    id: str
    due_date: date
    new_due_date: date


def open_application(
    document: Mapping[str, Any], today: date, calendar: WorkingDayCalendar
) -> OpenApplication:
    """The list row of a stored application view, standing as of today."""
    status = ApplicationStatus(document["status"])
    due = date.fromisoformat(document["due_date"])
    ready_on = document.get("ready_on")
    return OpenApplication(
        id=str(document["_id"]),
        kind=ApplicationKind(document["kind"]),
        acceptance_point=str(document["acceptance_point"]),
        status=status,
        accepted_on=date.fromisoformat(document["accepted_on"]),
        due_date=due,
        due_date_provisional=bool(document["due_date_provisional"]),
        sla=effective_sla(
            SlaState(document.get("sla") or SlaState.ON_TRACK),
            status,
            due,
            today,
            date.fromisoformat(ready_on) if ready_on else None,
        ),
        working_days_left=calendar.working_days_between(today, due),
    )


def _sort_key(order: WorklistOrder) -> Any:
    if order is WorklistOrder.ACCEPTED_ON:
        return lambda row: (row.accepted_on, row.id)
    if order is WorklistOrder.STATUS:
        ranks = {status: rank for rank, status in enumerate(ApplicationStatus)}
        return lambda row: (ranks[row.status], row.due_date, row.id)
    return lambda row: (row.due_date, row.id)


def page_of(
    rows: Iterable[OpenApplication],
    order: WorklistOrder,
    descending: bool,
    page: int,
    per_page: int,
) -> Page:
    """Sort and cut one page (1-based); a page past the end is empty, not an error."""
    ordered = sorted(rows, key=_sort_key(order), reverse=descending)
    start = (page - 1) * per_page
    return Page(ordered[start : start + per_page], len(ordered), page, per_page)


def tallies(rows: Iterable[OpenApplication], points: Sequence[str]) -> list[PointTally]:
    """Per acceptance point, in the given order (points with nothing open count zero)."""
    counts = {point: [0, 0, 0] for point in points}
    for row in rows:
        count = counts.setdefault(row.acceptance_point, [0, 0, 0])
        count[0] += 1
        if row.sla is SlaState.AT_RISK:
            count[1] += 1
        elif row.sla is SlaState.BREACHED:
            count[2] += 1
    return [PointTally(point, *count) for point, count in counts.items()]


def nearest_deadlines(rows: Iterable[OpenApplication], limit: int) -> list[OpenApplication]:
    """Applications still waiting for their card, soonest due first."""
    waiting = [row for row in rows if row.status is not ApplicationStatus.READY]
    return sorted(waiting, key=lambda row: (row.due_date, row.id))[:limit]


def calendar_years(
    rows: Sequence[OpenApplication], calendar: WorkingDayCalendar, today: date
) -> list[CalendarYear]:
    """Last year to the latest year any open due date reaches or an operator loaded (at least
    next year)."""
    loaded = set(calendar.loaded_years)
    last = max([today.year + 1, *(row.due_date.year for row in rows), *loaded])
    return [
        CalendarYear(
            year=year,
            official=not calendar.is_provisional(year),
            loaded=year in loaded,
            open_due_dates=sum(
                1 for row in rows if row.accepted_on.year <= year <= row.due_date.year
            ),
        )
        for year in range(today.year - 1, last + 1)
    ]


def moved_due_dates(
    rows: Iterable[OpenApplication],
    calendar: WorkingDayCalendar,
    candidate: YearArrangement,
) -> list[MovedDueDate]:
    """Open applications still waiting whose due date the candidate arrangement would change,
    comparing the due date counted from acceptance with each calendar."""
    proposed = calendar.with_year(candidate)
    moved = []
    for row in rows:
        if row.status is ApplicationStatus.READY:
            continue
        if not row.accepted_on.year <= candidate.year <= row.due_date.year:
            continue
        before = calendar.due_date(row.accepted_on).due_date
        after = proposed.due_date(row.accepted_on).due_date
        if before != after:
            moved.append(MovedDueDate(row.id, row.due_date, after))
    return sorted(moved, key=lambda item: (item.due_date, item.id))
