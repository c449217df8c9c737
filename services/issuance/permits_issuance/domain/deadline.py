"""The 20-working-day clock of one application, precomputed so timers only scan what is due.

`at_risk_on` is the first day on which `at_risk_working_days` or fewer working days are left
before the due date; `breach_on` is the day after the due date. An extension (延长) adds its
working days to the 20, counted on the same calendar, so a recomputation after a calendar load
keeps it. Each schedule records the calendar it was computed with. A card ready on or before the
due date meets the deadline (`sla.met`); a card ready later does not: the breach stands and no
`sla.met` follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from permits_common.domain.calendar import (
    ISSUING_WORKING_DAYS,
    CalendarStamp,
    WorkingDayCalendar,
)
from permits_common.domain.card import SlaState
from permits_common.domain.extension import MAX_EXTENSION_WORKING_DAYS


@dataclass(frozen=True, slots=True)
class DeadlineSchedule:
    """An application's deadline and the days its warnings fall due."""

    accepted_on: date
    due_date: date
    provisional: bool
    at_risk_on: date
    breach_on: date
    extension_days: int = 0
    calendar: CalendarStamp | None = None
    """None only for schedules stored before the calendar was recorded."""

    def depends_on(self, year: int) -> bool:
        """Whether counting this deadline's working days uses the given year."""
        first = (self.accepted_on + timedelta(days=1)).year
        return first <= year <= self.due_date.year


def schedule(
    calendar: WorkingDayCalendar,
    accepted_on: date,
    at_risk_working_days: int,
    extension_days: int = 0,
) -> DeadlineSchedule:
    """Due date and warning days for an application accepted on `accepted_on`, with any
    extension granted so far."""
    if not 0 <= at_risk_working_days < ISSUING_WORKING_DAYS:
        raise ValueError(f"at_risk_working_days must be within 0..{ISSUING_WORKING_DAYS - 1}")
    if not 0 <= extension_days <= MAX_EXTENSION_WORKING_DAYS:
        raise ValueError(f"extension_days must be within 0..{MAX_EXTENSION_WORKING_DAYS}")
    total = ISSUING_WORKING_DAYS + extension_days
    due = calendar.due_date(accepted_on, total)
    at_risk = calendar.add_working_days(accepted_on, total - at_risk_working_days)
    return DeadlineSchedule(
        accepted_on=accepted_on,
        due_date=due.due_date,
        provisional=due.provisional or at_risk.provisional,
        at_risk_on=at_risk.due_date,
        breach_on=due.due_date + timedelta(days=1),
        extension_days=extension_days,
        calendar=calendar.stamp(accepted_on, due.due_date),
    )


def extended(
    calendar: WorkingDayCalendar,
    current: DeadlineSchedule,
    working_days: int,
    at_risk_working_days: int,
) -> DeadlineSchedule:
    """The schedule after `working_days` more working days were granted (ValueError past the
    legal maximum). The new due date is the old one moved by that many working days, on the
    calendar in use now."""
    return schedule(
        calendar, current.accepted_on, at_risk_working_days, current.extension_days + working_days
    )


def working_days_left(calendar: WorkingDayCalendar, today: date, due_date: date) -> int:
    """Working days after today up to and including the due date (0 on the due date)."""
    return calendar.working_days_between(today, due_date)


def state_on(deadline: DeadlineSchedule, today: date) -> SlaState:
    """Where an application whose card is not ready yet stands today."""
    if today >= deadline.breach_on:
        return SlaState.BREACHED
    if today >= deadline.at_risk_on:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def met_when_ready(deadline: DeadlineSchedule, ready_on: date) -> bool:
    """True when the card was ready by the end of the due date."""
    return ready_on <= deadline.due_date
