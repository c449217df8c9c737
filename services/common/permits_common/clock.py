"""Time as the services see it: Asia/Shanghai dates, injectable so tests can move time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """The system clock, optionally shifted (tests and the local demo move it; production never)."""

    def __init__(self, offset: timedelta = timedelta()) -> None:
        self._offset = offset

    @property
    def offset(self) -> timedelta:
        """How far this clock runs ahead of real time."""
        return self._offset

    def set_offset(self, offset: timedelta) -> None:
        """Move the clock; only exposed outside production."""
        self._offset = offset

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC) + self._offset

    def today(self) -> date:
        """Today's date in Jinan (deadlines end at midnight Asia/Shanghai)."""
        return self.now().astimezone(SHANGHAI).date()


class FixedClock(Clock):
    """A clock that stands still at a given instant until moved (unit tests)."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self._at = at

    def now(self) -> datetime:
        return self._at + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move forward by delta."""
        self._at += delta
