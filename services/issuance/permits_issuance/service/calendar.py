"""The working-day calendar the service counts with, swapped whole when a year is loaded."""

from __future__ import annotations

from permits_common.domain.calendar import WorkingDayCalendar, YearArrangement


class CalendarHolder:
    """One shared reference to the current calendar (immutable, so a swap is atomic)."""

    def __init__(self, calendar: WorkingDayCalendar | None = None) -> None:
        self.current = calendar or WorkingDayCalendar()

    def load(self, arrangement: YearArrangement) -> WorkingDayCalendar:
        """Use an official arrangement from now on."""
        self.current = self.current.with_year(arrangement)
        return self.current
