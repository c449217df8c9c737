"""The 20-working-day clock across 2026's long holidays and into an unloaded 2027, the warning
and breach days with a moved clock, and the five-year validity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from permits_common.clock import FixedClock
from permits_common.domain.calendar import WorkingDayCalendar, official_arrangement
from permits_common.domain.card import SlaState, valid_until
from permits_issuance.domain.deadline import (
    DeadlineSchedule,
    met_when_ready,
    schedule,
    state_on,
    working_days_left,
)

CALENDAR = WorkingDayCalendar()


def test_spring_festival_2026_with_make_up_saturdays() -> None:
    planned = schedule(CALENDAR, date(2026, 2, 10), 5)
    assert replace(planned, calendar=None) == DeadlineSchedule(
        accepted_on=date(2026, 2, 10),
        due_date=date(2026, 3, 16),
        provisional=False,
        at_risk_on=date(2026, 3, 9),
        breach_on=date(2026, 3, 17),
    )
    assert planned.calendar is not None
    assert planned.calendar.official_years == (2026,)
    assert planned.calendar.provisional_years == ()


def test_national_day_2026() -> None:
    planned = schedule(CALENDAR, date(2026, 9, 21), 5)
    assert planned.due_date == date(2026, 10, 26)
    assert planned.at_risk_on == date(2026, 10, 19)
    assert not planned.provisional


def test_into_unloaded_2027_is_provisional_until_the_year_is_loaded() -> None:
    planned = schedule(CALENDAR, date(2026, 12, 15), 5)
    assert planned.due_date == date(2027, 1, 13)
    assert planned.provisional
    loaded = CALENDAR.with_year(
        official_arrangement(2027, [date(2027, 1, 1), date(2027, 1, 4)], [])
    )
    replanned = schedule(loaded, date(2026, 12, 15), 5)
    assert replanned.due_date == date(2027, 1, 14)
    assert not replanned.provisional


def test_at_risk_and_breach_as_the_clock_moves() -> None:
    planned = schedule(CALENDAR, date(2026, 2, 10), 5)
    clock = FixedClock(datetime(2026, 3, 5, 16, 0, tzinfo=UTC))  # 6 March in Jinan
    assert clock.today() == date(2026, 3, 6)
    assert state_on(planned, clock.today()) is SlaState.ON_TRACK
    assert working_days_left(CALENDAR, clock.today(), planned.due_date) == 6
    clock.advance(timedelta(days=3))
    assert state_on(planned, clock.today()) is SlaState.AT_RISK
    assert working_days_left(CALENDAR, clock.today(), planned.due_date) == 5
    clock.advance(timedelta(days=7))
    assert clock.today() == planned.due_date
    assert state_on(planned, clock.today()) is SlaState.AT_RISK
    assert met_when_ready(planned, clock.today())
    clock.advance(timedelta(days=1))
    assert state_on(planned, clock.today()) is SlaState.BREACHED
    assert not met_when_ready(planned, clock.today())


def test_warning_threshold_is_configurable() -> None:
    assert schedule(CALENDAR, date(2026, 2, 10), 0).at_risk_on == date(2026, 3, 16)
    with pytest.raises(ValueError, match="at_risk_working_days"):
        schedule(CALENDAR, date(2026, 2, 10), 20)


@pytest.mark.parametrize(
    ("valid_from", "expected"),
    [
        (date(2026, 3, 16), date(2031, 3, 16)),
        (date(2028, 2, 29), date(2033, 2, 28)),
        (date(2027, 2, 28), date(2032, 2, 28)),
    ],
)
def test_five_year_validity(valid_from: date, expected: date) -> None:
    assert valid_until(valid_from) == expected
