"""When a message may go out: quiet hours, per-recipient rate limits, retry backoff, reminders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from permits_notify.domain.messages import DEFERRABLE_TYPES, Channel, MessageType

SHANGHAI = ZoneInfo("Asia/Shanghai")
REMINDER_DAYS_BEFORE: tuple[int, ...] = (90, 30)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window (local time) in which non-urgent SMS wait until it ends."""

    start: time = time(22, 0)
    end: time = time(8, 0)
    zone: ZoneInfo = SHANGHAI

    def contains(self, instant: datetime) -> bool:
        """True when the local time of `instant` falls in the window (which may cross midnight)."""
        local = instant.astimezone(self.zone).timetz().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_end(self, instant: datetime) -> datetime:
        """The first moment at or after `instant` when the window is over."""
        local = instant.astimezone(self.zone)
        end_today = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if end_today < local:
            end_today = datetime.combine(local.date() + timedelta(days=1), self.end, self.zone)
        return end_today


def quiet_hours_release(
    message_type: MessageType, channel: Channel, now: datetime, quiet: QuietHours
) -> datetime | None:
    """When a deferred message may go, or None if it may go now.

    Only SMS of non-urgent types wait: an email does not wake anyone up.
    """
    if channel != "sms" or message_type not in DEFERRABLE_TYPES:
        return None
    if not quiet.contains(now):
        return None
    return quiet.next_end(now)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` SMS per recipient in any sliding `window`; the excess waits."""

    limit: int = 5
    window: timedelta = timedelta(hours=1)

    def release(self, recent_sends: Sequence[datetime], now: datetime) -> datetime | None:
        """When the next SMS may go given the recent ones, or None if it may go now."""
        within = sorted(sent for sent in recent_sends if sent > now - self.window)
        if len(within) < self.limit:
            return None
        return within[len(within) - self.limit] + self.window


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Temporary failures are retried with exponential backoff, then treated as permanent."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed tries, or None when it is time to give up."""
        if attempts >= self.max_attempts:
            return None
        factor: int = 2 ** max(attempts - 1, 0)
        delay = min(self.base * factor, self.cap)
        return now + delay


def reminder_due_at(valid_until: date, days_before: int) -> datetime:
    """A renewal reminder goes at 10:00 Jinan time, `days_before` days before the last valid day."""
    day = valid_until - timedelta(days=days_before)
    return datetime.combine(day, time(10, 0), tzinfo=SHANGHAI)


def reminder_still_relevant(valid_until: date, days_before: int, today: date) -> bool:
    """Skip a reminder that a later one replaces, or that comes after the card has expired.

    When the clock jumps past both the 90- and the 30-day mark (a worker that was down for
    months, or a test), the applicant gets one reminder, not two.
    """
    if today > valid_until:
        return False
    return all(
        today < valid_until - timedelta(days=later)
        for later in REMINDER_DAYS_BEFORE
        if later < days_before
    )
