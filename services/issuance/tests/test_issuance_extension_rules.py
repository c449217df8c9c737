"""The law at its edges: an extension of at most 10 working days in total, counted on the same
calendar across the Spring Festival and into a provisional year, kept when a year is loaded
afterwards; and a year loaded twice changes nothing."""

from __future__ import annotations

from datetime import date

import pytest

from permits_common.domain.calendar import WorkingDayCalendar, official_arrangement
from permits_common.domain.card import ApplicationStatus
from permits_common.domain.extension import (
    MAX_EXTENSION_WORKING_DAYS,
    extension_fits,
    extension_in_time,
)
from permits_issuance.domain.deadline import extended, schedule

CALENDAR = WorkingDayCalendar()
AT_RISK = 5
ARRANGEMENT_2027 = official_arrangement(2027, [date(2027, 1, 1), date(2027, 1, 4)], [])


def test_ten_working_days_in_total_are_allowed() -> None:
    assert MAX_EXTENSION_WORKING_DAYS == 10
    assert extension_fits(0, 10)
    assert extension_fits(4, 6)
    planned = schedule(CALENDAR, date(2026, 3, 2), AT_RISK)
    longest = extended(CALENDAR, planned, 10, AT_RISK)
    assert longest.extension_days == 10
    assert CALENDAR.working_days_between(planned.due_date, longest.due_date) == 10
    assert CALENDAR.working_days_between(longest.accepted_on, longest.due_date) == 30


def test_an_eleventh_working_day_is_refused() -> None:
    assert not extension_fits(0, 11)
    assert not extension_fits(10, 1)
    assert not extension_fits(6, 5)
    assert not extension_fits(0, 0)
    planned = extended(CALENDAR, schedule(CALENDAR, date(2026, 3, 2), AT_RISK), 6, AT_RISK)
    with pytest.raises(ValueError, match="extension_days"):
        extended(CALENDAR, planned, 5, AT_RISK)


def test_an_extension_is_granted_only_before_the_card_is_ready() -> None:
    allowed = {status for status in ApplicationStatus if extension_in_time(status)}
    assert allowed == {
        ApplicationStatus.ACCEPTED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.IN_PRODUCTION,
    }


def test_an_extension_across_the_spring_festival_counts_the_make_up_saturdays() -> None:
    # Accepted Monday 12 January 2026: the 20th working day is Monday 9 February. Ten more:
    # 10-13 Feb, Saturday 14 Feb (make-up), 15-23 Feb off, 24-27 Feb, Saturday 28 Feb (make-up).
    planned = schedule(CALENDAR, date(2026, 1, 12), AT_RISK)
    assert planned.due_date == date(2026, 2, 9)
    later = extended(CALENDAR, planned, 10, AT_RISK)
    assert later.due_date == date(2026, 2, 28)
    assert later.breach_on == date(2026, 3, 1)
    assert later.at_risk_on == date(2026, 2, 14)
    assert not later.provisional
    assert later.calendar is not None
    assert later.calendar.official_years == (2026,)


def test_an_extension_into_a_provisional_year_is_provisional() -> None:
    planned = schedule(CALENDAR, date(2026, 12, 1), AT_RISK)
    assert planned.due_date == date(2026, 12, 29)
    assert not planned.provisional
    later = extended(CALENDAR, planned, 10, AT_RISK)
    # 30-31 Dec, 1 Jan off (statutory), 4-8 Jan, 11-13 Jan.
    assert later.due_date == date(2027, 1, 13)
    assert later.provisional
    assert later.calendar is not None
    assert later.calendar.provisional_years == (2027,)
    assert later.depends_on(2027)
    assert not planned.depends_on(2027)


def test_an_extension_is_kept_when_the_year_is_loaded_afterwards() -> None:
    later = extended(CALENDAR, schedule(CALENDAR, date(2026, 12, 1), AT_RISK), 10, AT_RISK)
    loaded = CALENDAR.with_year(ARRANGEMENT_2027)
    recomputed = schedule(loaded, later.accepted_on, AT_RISK, later.extension_days)
    assert recomputed.extension_days == 10
    assert recomputed.due_date == date(2027, 1, 14)  # 4 January is off in the loaded year
    assert not recomputed.provisional
    assert recomputed.calendar is not None
    assert later.calendar is not None
    assert recomputed.calendar.official_years == (2026, 2027)
    assert recomputed.calendar.version != later.calendar.version


def test_the_same_load_twice_changes_nothing() -> None:
    once = CALENDAR.with_year(ARRANGEMENT_2027)
    twice = once.with_year(
        official_arrangement(2027, sorted(ARRANGEMENT_2027.holidays), ARRANGEMENT_2027.workdays)
    )
    accepted_on = date(2026, 12, 1)
    assert schedule(twice, accepted_on, AT_RISK, 10) == schedule(once, accepted_on, AT_RISK, 10)


def test_a_date_that_does_not_reach_the_loaded_year_keeps_its_version() -> None:
    planned = schedule(CALENDAR, date(2026, 3, 2), AT_RISK)
    loaded = CALENDAR.with_year(ARRANGEMENT_2027)
    assert schedule(loaded, date(2026, 3, 2), AT_RISK) == planned
