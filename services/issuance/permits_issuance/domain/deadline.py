"""The 20-working-day clock of one application, precomputed so timers only scan what is due.

`at_risk_on` is the first day on which `at_risk_working_days` or fewer working days are left
before the due date; `breach_on` is the day after the due date. A card ready on or before the
due date meets the deadline (`sla.met`); a card ready later does not: the breach stands and no
`sla.met` follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from permits_common.domain.calendar import ISSUING_WORKING_DAYS, WorkingDayCalendar
from permits_common.domain.card import SlaState


@dataclass(frozen=True, slots=True)
class DeadlineSchedule:
    """An application's deadline and the days its warnings fall due."""

    accepted_on: date
    due_date: date
    provisional: bool
    at_risk_on: date
    breach_on: date


def schedule(
    calendar: WorkingDayCalendar, accepted_on: date, at_risk_working_days: int
) -> DeadlineSchedule:
    """Due date and warning days for an application accepted on `accepted_on`."""
    if not 0 <= at_risk_working_days < ISSUING_WORKING_DAYS:
        raise ValueError(f"at_risk_working_days must be within 0..{ISSUING_WORKING_DAYS - 1}")
    due = calendar.due_date(accepted_on)
    at_risk = calendar.add_working_days(accepted_on, ISSUING_WORKING_DAYS - at_risk_working_days)
    return DeadlineSchedule(
        accepted_on=accepted_on,
        due_date=due.due_date,
        provisional=due.provisional or at_risk.provisional,
        at_risk_on=at_risk.due_date,
        breach_on=due.due_date + timedelta(days=1),
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
