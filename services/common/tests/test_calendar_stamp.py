"""The calendar behind a date: which years were official, which provisional, and a version that
changes exactly when one of those years' arrangement changes."""

from __future__ import annotations

from datetime import date

from permits_common.domain.calendar import WorkingDayCalendar, official_arrangement


def test_a_date_within_an_official_year() -> None:
    stamp = WorkingDayCalendar().stamp(date(2026, 3, 2), date(2026, 3, 30))
    assert stamp.official_years == (2026,)
    assert stamp.provisional_years == ()
    assert not stamp.provisional
    assert stamp.as_document() == {
        "version": stamp.version,
        "provisional": False,
        "official_years": [2026],
        "provisional_years": [],
    }


def test_the_acceptance_day_itself_is_not_counted() -> None:
    stamp = WorkingDayCalendar().stamp(date(2026, 12, 31), date(2027, 1, 29))
    assert stamp.years == (2027,)
    assert stamp.provisional_years == (2027,)


def test_the_version_follows_the_content_of_the_counted_years() -> None:
    start, end = date(2026, 12, 1), date(2027, 1, 13)
    calendar = WorkingDayCalendar()
    before = calendar.stamp(start, end)
    assert before == WorkingDayCalendar().stamp(start, end)
    loaded = calendar.with_year(official_arrangement(2027, [date(2027, 1, 1)], []))
    after = loaded.stamp(start, end)
    assert after.version != before.version
    assert after.official_years == (2026, 2027)
    again = loaded.with_year(official_arrangement(2027, [date(2027, 1, 1)], []))
    assert again.stamp(start, end) == after
    correction = official_arrangement(2027, [date(2027, 1, 1), date(2027, 1, 4)], [])
    corrected = loaded.with_year(correction)
    assert corrected.stamp(start, end).version != after.version
    unrelated = loaded.with_year(official_arrangement(2028, [date(2028, 1, 3)], []))
    assert unrelated.stamp(start, end) == after
