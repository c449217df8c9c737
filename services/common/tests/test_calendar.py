"""The working-day calendar behind the 20-working-day deadline (domain.md examples)."""

from datetime import date

import pytest

from permits_common.domain.calendar import (
    WorkingDayCalendar,
    official_arrangement,
    statutory_holidays,
)

calendar = WorkingDayCalendar()


@pytest.mark.parametrize(
    ("accepted", "due"),
    [
        (date(2026, 2, 13), date(2026, 3, 19)),  # across the Spring Festival, with 14/28 Feb worked
        (
            date(2026, 9, 18),
            date(2026, 10, 22),
        ),  # across National Day, with 20 Sep and 10 Oct worked
        (date(2026, 11, 2), date(2026, 11, 30)),
    ],
)
def test_2026_due_dates(accepted: date, due: date) -> None:
    result = calendar.due_date(accepted)
    assert result.due_date == due
    assert not result.provisional


def test_make_up_days_count_and_holidays_do_not() -> None:
    assert calendar.is_working_day(date(2026, 2, 14))  # Saturday, make-up day
    assert not calendar.is_working_day(date(2026, 2, 16))
    assert calendar.is_working_day(date(2026, 10, 10))
    assert not calendar.is_working_day(date(2026, 10, 7))


def test_acceptance_day_itself_is_not_counted() -> None:
    assert calendar.add_working_days(date(2026, 11, 26), 1).due_date == date(2026, 11, 27)


def test_2027_is_provisional_until_loaded() -> None:
    result = calendar.due_date(date(2026, 12, 10))
    assert result.provisional
    assert calendar.is_provisional(2027)
    assert not calendar.is_provisional(2026)
    # provisional 2027: 1 Jan and the Spring Festival (除夕 5 Feb, 6-8 Feb) are off
    assert not calendar.is_working_day(date(2027, 1, 1))
    assert not calendar.is_working_day(date(2027, 2, 5))
    assert not calendar.is_working_day(date(2027, 2, 8))


def test_loading_2027_replaces_the_provisional_calendar() -> None:
    official = official_arrangement(
        2027,
        holidays=[date(2027, 1, 1), *(date(2027, 2, d) for d in range(5, 14))],
        workdays=[date(2027, 2, 20)],
    )
    loaded = calendar.with_year(official)
    assert not loaded.is_provisional(2027)
    assert not loaded.is_working_day(date(2027, 2, 10))
    assert loaded.is_working_day(date(2027, 2, 20))
    assert not loaded.due_date(date(2027, 1, 20)).provisional
    assert loaded.due_date(date(2027, 1, 20)) != calendar.due_date(date(2027, 1, 20))


def test_statutory_holidays_of_2027() -> None:
    days = statutory_holidays(2027)
    assert date(2027, 4, 5) in days  # Qingming
    assert date(2027, 6, 9) in days  # Dragon Boat
    assert date(2027, 9, 15) in days  # Mid-Autumn
    assert len(days) == 13


def test_bad_arrangements_are_refused() -> None:
    with pytest.raises(ValueError, match="outside 2027"):
        official_arrangement(2027, [date(2026, 12, 31)], [])
    with pytest.raises(ValueError, match="both holiday"):
        official_arrangement(2027, [date(2027, 2, 20)], [date(2027, 2, 20)])


def test_working_days_between_matches_counting() -> None:
    assert calendar.working_days_between(date(2026, 2, 13), date(2026, 3, 19)) == 20
    assert calendar.working_days_between(date(2026, 3, 19), date(2026, 2, 13)) == -20
    assert calendar.working_days_between(date(2026, 12, 31), date(2027, 1, 4)) == 1


def test_a_loaded_year_is_never_answered_from_the_calendar_before() -> None:
    before = WorkingDayCalendar()
    accepted = date(2027, 1, 20)
    asked = before.due_date(accepted), before.stamp(accepted, date(2027, 3, 1))
    official = official_arrangement(2027, holidays=[date(2027, 2, 10)], workdays=[])
    loaded = before.with_year(official)
    assert loaded.due_date(accepted) == loaded.add_working_days(accepted, 20)
    assert loaded.due_date(accepted) != asked[0]
    assert loaded.stamp(accepted, date(2027, 3, 1)).version != asked[1].version
    assert before.due_date(accepted) == asked[0] == before.add_working_days(accepted, 20)
