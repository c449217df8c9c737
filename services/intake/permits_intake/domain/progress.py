"""How an application's status and deadline standing move as events arrive.

Events may arrive late or twice (at-least-once delivery, several topics): a status only ever
moves forward and the deadline standing only towards a more definite answer.
"""

from __future__ import annotations

from datetime import date

from permits_common.domain.card import ApplicationStatus, SlaState
from permits_common.events.models import (
    ApplicationApproved,
    ApplicationCollected,
    ApplicationDispatched,
    ApplicationInProduction,
    ApplicationReady,
    ApplicationRejected,
    EventData,
    SlaAtRisk,
    SlaBreached,
    SlaMet,
)

_STATUS_OF_EVENT: dict[type[EventData], ApplicationStatus] = {
    ApplicationApproved: ApplicationStatus.APPROVED,
    ApplicationInProduction: ApplicationStatus.IN_PRODUCTION,
    ApplicationReady: ApplicationStatus.READY,
    ApplicationDispatched: ApplicationStatus.DISPATCHED,
    ApplicationCollected: ApplicationStatus.COLLECTED,
    ApplicationRejected: ApplicationStatus.REJECTED,
}
_SLA_OF_EVENT: dict[type[EventData], SlaState] = {
    SlaAtRisk: SlaState.AT_RISK,
    SlaBreached: SlaState.BREACHED,
    SlaMet: SlaState.MET,
}
_SLA_RANK = {SlaState.ON_TRACK: 0, SlaState.AT_RISK: 1, SlaState.BREACHED: 2, SlaState.MET: 3}
_WAITING = frozenset(
    {ApplicationStatus.ACCEPTED, ApplicationStatus.APPROVED, ApplicationStatus.IN_PRODUCTION}
)


def status_of(event: EventData) -> ApplicationStatus | None:
    """The status an application event announces (None for events that carry no status)."""
    return _STATUS_OF_EVENT.get(type(event))


def sla_of(event: EventData) -> SlaState | None:
    """The deadline standing an SLA event announces."""
    return _SLA_OF_EVENT.get(type(event))


def sla_states_before(new: SlaState) -> list[SlaState]:
    """Standings a new one may replace: at risk after on track, breached after either, and met
    (the card was ready in time) over anything."""
    return [state for state in SlaState if _SLA_RANK[state] < _SLA_RANK[new]]


def closes_application(status: ApplicationStatus) -> bool:
    """Collected or rejected: the person may open a new application."""
    return not status.is_open


def effective_sla(
    stored: SlaState,
    status: ApplicationStatus,
    due_date: date,
    today: date,
    ready_on: date | None,
) -> SlaState:
    """The standing to show now: the last announced one, unless the calendar already decided
    (a waiting application past its due date is breached even before `sla.breached` arrives)."""
    if stored in (SlaState.MET, SlaState.BREACHED) or status is ApplicationStatus.REJECTED:
        return stored
    if ready_on is not None:
        return SlaState.MET if ready_on <= due_date else SlaState.BREACHED
    if status in _WAITING and today > due_date:
        return SlaState.BREACHED
    return stored
