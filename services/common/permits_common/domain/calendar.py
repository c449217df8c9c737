"""The working-day calendar behind the 20-working-day issuing deadline.

Working days follow the State Council's holiday arrangement of each year: weekends and public
holidays are off, announced make-up days (调休) are worked. Three sources, best first:

1. years an operator loaded (the official arrangement, published each November);
2. the `chinesecalendar` package's data (official arrangements 2004-2026);
3. for any other year, weekends plus the statutory holiday dates of the national rules
   (全国年节及纪念日放假办法, 2025 revision): a *provisional* calendar, to be replaced once the
   official arrangement is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar, TypeVar

import chinese_calendar
from lunardate import LunarDate

_EPOCH_YEAR = 2000
ISSUING_WORKING_DAYS = 20
"""自受理之日起20个工作日内: the legal issuing time limit."""


@dataclass(frozen=True, slots=True)
class YearArrangement:
    """One year's days off and make-up working days; `official` is False for a provisional guess."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    official: bool

    def is_working_day(self, day: date) -> bool:
        """Make-up days are worked, holidays are not, otherwise Monday to Friday."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def digest(self) -> str:
        """A short fingerprint of the content: the same days give the same digest, whoever
        loaded them and however often."""
        content = "|".join(
            (
                str(self.year),
                "official" if self.official else "provisional",
                ",".join(sorted(d.isoformat() for d in self.holidays)),
                ",".join(sorted(d.isoformat() for d in self.workdays)),
            )
        )
        return hashlib.sha256(content.encode()).hexdigest()[:16]


def official_arrangement(
    year: int, holidays: Iterable[date], workdays: Iterable[date]
) -> YearArrangement:
    """Validate and build an operator-loaded arrangement; ValueError says what is wrong."""
    off, worked = frozenset(holidays), frozenset(workdays)
    stray = sorted(d.isoformat() for d in off | worked if d.year != year)
    if stray:
        raise ValueError(f"dates outside {year}: {', '.join(stray)}")
    both = sorted(d.isoformat() for d in off & worked)
    if both:
        raise ValueError(f"dates both holiday and make-up working day: {', '.join(both)}")
    return YearArrangement(year, off, worked, official=True)


def statutory_holidays(year: int) -> frozenset[date]:
    """The national statutory public holidays of a year, without any make-up-day shifting."""
    spring_festival = LunarDate(year, 1, 1).to_solar_date()
    days = {
        date(year, 1, 1),
        date(year, 5, 1),
        date(year, 5, 2),
        date(year, 10, 1),
        date(year, 10, 2),
        date(year, 10, 3),
        LunarDate(year, 5, 5).to_solar_date(),
        LunarDate(year, 8, 15).to_solar_date(),
        _qingming(year),
    }
    days.update(spring_festival + timedelta(days=offset) for offset in range(-1, 3))
    return frozenset(d for d in days if d.year == year)


def _qingming(year: int) -> date:
    """Qingming falls on 4, 5 or 6 April: the day the sun reaches 15° longitude."""
    terms = chinese_calendar.get_solar_terms(date(year, 4, 3), date(year, 4, 7))
    return next((day for day, name in terms if name == "清明"), date(year, 4, 5))


def _builtin_arrangement(year: int) -> YearArrangement | None:
    """The official arrangement shipped in `chinesecalendar`, when it covers the year."""
    if not _BuiltinData.first_year <= year <= _BuiltinData.last_year:
        return None
    return YearArrangement(
        year,
        frozenset(d for d in _BuiltinData.holidays() if d.year == year),
        frozenset(d for d in _BuiltinData.workdays() if d.year == year),
        official=True,
    )


class _BuiltinData:
    """Bounds and tables of the packaged holiday data, read once."""

    first_year: ClassVar[int] = min(d.year for d in chinese_calendar.holidays)
    last_year: ClassVar[int] = max(d.year for d in chinese_calendar.holidays)

    @staticmethod
    def holidays() -> Iterable[date]:
        days: Iterable[date] = chinese_calendar.holidays.keys()
        return days

    @staticmethod
    def workdays() -> Iterable[date]:
        days: Iterable[date] = chinese_calendar.workdays.keys()
        return days


@dataclass(frozen=True, slots=True)
class CalendarStamp:
    """The calendar a date was computed with: the years counted, which were official and which
    provisional, and a version that changes whenever one of those years' arrangement changes
    (and only then), so an operator can say why a date is what it is."""

    version: str
    official_years: tuple[int, ...]
    provisional_years: tuple[int, ...]

    @property
    def provisional(self) -> bool:
        """True when any counted year is still a guess."""
        return bool(self.provisional_years)

    @property
    def years(self) -> tuple[int, ...]:
        """Every year the date depends on, oldest first."""
        return tuple(sorted(self.official_years + self.provisional_years))

    def as_document(self) -> dict[str, object]:
        """As stored with an application and shown by the APIs (`calendar` of contract.md)."""
        return {
            "version": self.version,
            "provisional": self.provisional,
            "official_years": list(self.official_years),
            "provisional_years": list(self.provisional_years),
        }


@dataclass(frozen=True, slots=True)
class DueDate:
    """A deadline and whether any day counted towards it came from a provisional calendar."""

    due_date: date
    provisional: bool


class WorkingDayCalendar:
    """Counts working days across years, preferring loaded arrangements over built-in ones.

    Immutable: loading a year gives a new calendar, so a service swaps its reference atomically.
    """

    def __init__(self, loaded: Mapping[int, YearArrangement] | None = None) -> None:
        self._loaded = dict(loaded or {})
        self._cache: dict[int, YearArrangement] = {}
        self._tables: dict[int, _PrefixTable] = {}
        self._due_dates: dict[tuple[date, int], DueDate] = {}
        self._stamps: dict[tuple[date, date], CalendarStamp] = {}

    def with_year(self, arrangement: YearArrangement) -> WorkingDayCalendar:
        """A calendar that also knows this year's official arrangement."""
        return WorkingDayCalendar({**self._loaded, arrangement.year: arrangement})

    @property
    def loaded_years(self) -> list[int]:
        """Years an operator loaded, oldest first."""
        return sorted(self._loaded)

    def arrangement(self, year: int) -> YearArrangement:
        """The best arrangement known for a year (loaded, built-in, else provisional)."""
        found = self._cache.get(year)
        if found is None:
            found = (
                self._loaded.get(year)
                or _builtin_arrangement(year)
                or YearArrangement(year, statutory_holidays(year), frozenset(), official=False)
            )
            self._cache[year] = found
        return found

    def is_provisional(self, year: int) -> bool:
        """True while no official arrangement is known for the year."""
        return not self.arrangement(year).official

    def is_working_day(self, day: date) -> bool:
        """Whether the police count this day towards the deadline."""
        return self.arrangement(day.year).is_working_day(day)

    def add_working_days(self, start: date, count: int) -> DueDate:
        """The count-th working day after `start` (start itself is not counted)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        day, provisional, left = start, False, count
        while left:
            day += timedelta(days=1)
            arrangement = self.arrangement(day.year)
            if arrangement.is_working_day(day):
                left -= 1
                provisional = provisional or not arrangement.official
        return DueDate(day, provisional)

    def stamp(self, start: date, end: date) -> CalendarStamp:
        """The calendar behind counting the working days in (start, end]; each pair is worked
        out once per calendar (every application of a day asks for the same one)."""
        found = self._stamps.get((start, end))
        if found is None:
            found = _remembered(self._stamps, (start, end), self._stamp(start, end))
        return found

    def _stamp(self, start: date, end: date) -> CalendarStamp:
        first = (start + timedelta(days=1)).year
        years = range(first, max(end.year, first) + 1)
        arrangements = [self.arrangement(year) for year in years]
        version = hashlib.sha256(
            ";".join(arrangement.digest() for arrangement in arrangements).encode()
        ).hexdigest()[:12]
        return CalendarStamp(
            version=version,
            official_years=tuple(a.year for a in arrangements if a.official),
            provisional_years=tuple(a.year for a in arrangements if not a.official),
        )

    def due_date(self, accepted_on: date, working_days: int = ISSUING_WORKING_DAYS) -> DueDate:
        """The legal due date: the 20th working day after the day of acceptance (worked out
        once per day and calendar)."""
        found = self._due_dates.get((accepted_on, working_days))
        if found is None:
            found = _remembered(
                self._due_dates,
                (accepted_on, working_days),
                self.add_working_days(accepted_on, working_days),
            )
        return found

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.working_days_between(end, start)
        return self._ordinal(end) - self._ordinal(start)

    def _ordinal(self, day: date) -> int:
        """Working days from a fixed epoch up to and including `day`, from per-year prefix sums."""
        table = self._prefix_table(day.year)
        return table.offset + table.prefix[day.timetuple().tm_yday - 1]

    def _prefix_table(self, year: int) -> _PrefixTable:
        if year < _EPOCH_YEAR:
            raise ValueError(f"working days are counted from {_EPOCH_YEAR} on")
        table = self._tables.get(year)
        if table is None:
            table = _PrefixTable(self, year)
            self._tables[year] = table
        return table


_REMEMBERED = 4096
"""Answers a calendar keeps per kind; past that it starts again (a day's answers come back
all day, older days' rarely)."""


_K = TypeVar("_K")
_V = TypeVar("_V")


def _remembered(answers: dict[_K, _V], key: _K, value: _V) -> _V:
    if len(answers) >= _REMEMBERED:
        answers.clear()
    answers[key] = value
    return value


class _PrefixTable:
    """Cumulative working-day counts within one year, plus the count of all years before it."""

    __slots__ = ("offset", "prefix")

    def __init__(self, calendar: WorkingDayCalendar, year: int) -> None:
        arrangement = calendar.arrangement(year)
        day, running, prefix = date(year, 1, 1), 0, []
        while day.year == year:
            running += arrangement.is_working_day(day)
            prefix.append(running)
            day += timedelta(days=1)
        self.prefix = prefix
        if year == _EPOCH_YEAR:
            self.offset = 0
        else:
            previous = calendar._prefix_table(year - 1)
            self.offset = previous.offset + previous.prefix[-1]
