"""The staff lists' rules, without I/O: standing, working days left, paging, preview."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from permits_common.domain.calendar import WorkingDayCalendar, official_arrangement
from permits_common.domain.card import ApplicationStatus, SlaState
from permits_intake.domain.overview import (
    WorklistOrder,
    calendar_years,
    moved_due_dates,
    nearest_deadlines,
    open_application,
    page_of,
    tallies,
)

CALENDAR = WorkingDayCalendar()
TODAY = date(2026, 3, 2)


def _doc(number: int, accepted_on: date, **fields: Any) -> dict[str, Any]:
    due = CALENDAR.due_date(accepted_on)
    return {
        "_id": f"app-{number}",
        "kind": "first",
        "acceptance_point": "LIXIA",
        "status": "accepted",
        "accepted_on": accepted_on.isoformat(),
        "due_date": due.due_date.isoformat(),
        "due_date_provisional": due.provisional,
        "sla": "on_track",
        **fields,
    }


def test_a_waiting_application_past_its_due_date_counts_as_breached() -> None:
    row = open_application(_doc(1, TODAY - timedelta(days=40)), TODAY, CALENDAR)
    assert row.sla is SlaState.BREACHED
    assert row.working_days_left < 0
    fresh = open_application(_doc(2, TODAY), TODAY, CALENDAR)
    assert (fresh.sla, fresh.working_days_left) == (SlaState.ON_TRACK, 20)


def test_pages_are_sorted_and_cut() -> None:
    rows = [open_application(_doc(n, TODAY - timedelta(days=n)), TODAY, CALENDAR) for n in range(5)]
    first = page_of(rows, WorklistOrder.DUE_DATE, False, 1, 2)
    assert [row.id for row in first.items] == ["app-4", "app-3"]
    assert first.total == 5
    last = page_of(rows, WorklistOrder.ACCEPTED_ON, True, 3, 2)
    assert [row.id for row in last.items] == ["app-4"]
    assert page_of(rows, WorklistOrder.STATUS, False, 9, 2).items == []


def test_tallies_and_nearest_deadlines() -> None:
    rows = [
        open_application(_doc(1, TODAY - timedelta(days=40)), TODAY, CALENDAR),
        open_application(_doc(2, TODAY, sla="at_risk"), TODAY, CALENDAR),
        open_application(_doc(3, TODAY, acceptance_point="HUAIYIN"), TODAY, CALENDAR),
        open_application(
            _doc(4, TODAY - timedelta(days=50), status=ApplicationStatus.READY.value),
            TODAY,
            CALENDAR,
        ),
    ]
    counted = {
        t.point: (t.open, t.at_risk, t.breached) for t in tallies(rows, ["LIXIA", "SHIZHONG"])
    }
    assert counted == {"LIXIA": (3, 1, 1), "SHIZHONG": (0, 0, 0), "HUAIYIN": (1, 0, 0)}
    assert [row.id for row in nearest_deadlines(rows, 2)] == ["app-1", "app-2"]


def test_calendar_years_and_the_preview_of_a_new_arrangement() -> None:
    late = date(2026, 12, 20)
    rows = [
        open_application(_doc(1, late), TODAY, CALENDAR),
        open_application(_doc(2, TODAY), TODAY, CALENDAR),
    ]
    years = {year.year: year for year in calendar_years(rows, CALENDAR, TODAY)}
    assert sorted(years) == [2025, 2026, 2027]
    assert years[2026].official
    assert not years[2027].official
    assert (years[2026].open_due_dates, years[2027].open_due_dates) == (2, 1)

    extra_days_off = official_arrangement(
        2027, [date(2027, 1, 1), date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 6)], []
    )
    moved = moved_due_dates(rows, CALENDAR, extra_days_off)
    assert [item.id for item in moved] == ["app-1"]
    assert moved[0].new_due_date > moved[0].due_date
