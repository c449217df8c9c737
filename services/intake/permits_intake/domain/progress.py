"""How an application's status and deadline standing move as events arrive.

Events may arrive late or twice (at-least-once delivery, several topics): a status only ever
moves forward and the deadline standing only towards a more definite answer.

The status view is not updated in place: each event leaves a *step* (a status reached, a
deadline standing, a due date, the issued card), kept under a key that makes a redelivered
event's step the same step, and the view is folded from the accepted application and its
steps when it is read. Steps of different topics arrive in any order; the fold only shows
states that existed: `ready` and `collected` appear together with the complete card, never
before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from permits_common.domain.card import ApplicationStatus, SlaState, status_advances
from permits_common.events.models import (
    ApplicationApproved,
    ApplicationCollected,
    ApplicationInProduction,
    ApplicationReady,
    ApplicationRejected,
    CardIssued,
    EventData,
    SlaAtRisk,
    SlaBreached,
    SlaMet,
    SlaRescheduled,
    SlaScheduled,
)

_STATUS_OF_EVENT: dict[type[EventData], ApplicationStatus] = {
    ApplicationApproved: ApplicationStatus.APPROVED,
    ApplicationInProduction: ApplicationStatus.IN_PRODUCTION,
    ApplicationReady: ApplicationStatus.READY,
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


_WITH_CARD = frozenset({ApplicationStatus.READY, ApplicationStatus.COLLECTED})
_RANK = {status: rank for rank, status in enumerate(ApplicationStatus)}


@dataclass(frozen=True, slots=True)
class StatusStep:
    """The application reached a status (with what that status brings)."""

    status: ApplicationStatus
    at: datetime
    ready_on: date | None = None
    rejection: dict[str, str] | None = None

    @property
    def key(self) -> str:
        """One step per status: a repeated event is the same step."""
        return self.status.value


@dataclass(frozen=True, slots=True)
class SlaStep:
    """A deadline standing was announced."""

    standing: SlaState

    @property
    def key(self) -> str:
        """One step per standing."""
        return f"sla:{self.standing.value}"


@dataclass(frozen=True, slots=True)
class DueStep:
    """The due date was scheduled or recomputed; the latest announcement counts."""

    due_date: date
    provisional: bool
    at: datetime
    event_id: str

    @property
    def key(self) -> str:
        """One step per announcement (a reschedule may return to an earlier date)."""
        return f"due:{self.event_id}"


@dataclass(frozen=True, slots=True)
class CardStep:
    """The card made for the application, as issued: shown whole or not at all."""

    number: str
    issue_count: int
    valid_from: date
    valid_until: date
    issuing_authority: str

    @property
    def key(self) -> str:
        """An application has one card issue."""
        return "card"

    def shown(self) -> dict[str, Any]:
        """The card as the application view shows it."""
        return {
            "number": self.number,
            "issue_count": self.issue_count,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "issuing_authority": self.issuing_authority,
        }


Step = StatusStep | SlaStep | DueStep | CardStep


def steps_of(event_id: str, at: datetime, data: EventData) -> list[Step]:
    """What an event adds to its application's view (nothing for events about no application
    status, such as card status changes)."""
    status = status_of(data)
    if status is not None:
        return [
            StatusStep(
                status,
                at,
                ready_on=data.ready_on if isinstance(data, ApplicationReady) else None,
                rejection={"code": data.code, "message": data.message}
                if isinstance(data, ApplicationRejected)
                else None,
            )
        ]
    standing = sla_of(data)
    if standing is not None:
        return [SlaStep(standing)]
    if isinstance(data, (SlaScheduled, SlaRescheduled)):
        return [DueStep(data.due_date, data.provisional, at, event_id)]
    if isinstance(data, CardIssued):
        return [
            CardStep(
                data.card_number,
                data.issue_count,
                data.valid_from,
                data.valid_until,
                data.issuing_authority,
            )
        ]
    return []


@dataclass(slots=True)
class Progress:
    """An application's view as its steps make it."""

    status: ApplicationStatus
    history: list[dict[str, Any]]
    sla: SlaState
    due_date: date
    due_date_provisional: bool
    ready_on: date | None = None
    rejection: dict[str, str] | None = None
    card: dict[str, Any] | None = field(default=None)


def fold(
    accepted_at: datetime,
    due_date: date,
    due_date_provisional: bool,
    steps: Iterable[Step],
) -> Progress:
    """The view of an accepted application after its steps, in any order of arrival.

    Statuses are taken in the order they happened (by the time of their events, to the
    microsecond; collection, which only follows `ready`, last), each only if it moves the
    application forward. A status that comes with the card
    (`ready`, `collected`) counts only once the issued card is known: the card and the
    `ready` step are announced on two topics, and the view shows both or neither.
    """
    statuses: list[StatusStep] = []
    standings: list[SlaState] = [SlaState.ON_TRACK]
    dues: list[DueStep] = []
    card: CardStep | None = None
    for step in steps:
        if isinstance(step, StatusStep):
            statuses.append(step)
        elif isinstance(step, SlaStep):
            standings.append(step.standing)
        elif isinstance(step, DueStep):
            dues.append(step)
        else:
            card = step
    view = Progress(
        status=ApplicationStatus.ACCEPTED,
        history=[{"status": ApplicationStatus.ACCEPTED.value, "at": accepted_at}],
        sla=max(standings, key=_SLA_RANK.__getitem__),
        due_date=due_date,
        due_date_provisional=due_date_provisional,
    )
    statuses.sort(key=lambda s: (s.status is ApplicationStatus.COLLECTED, s.at, _RANK[s.status]))
    for step in statuses:
        if not status_advances(view.status, step.status):
            continue
        if step.status in _WITH_CARD and card is None:
            continue
        view.status = step.status
        view.history.append({"status": step.status.value, "at": step.at})
        view.ready_on = step.ready_on or view.ready_on
        view.rejection = step.rejection or view.rejection
    if view.status in _WITH_CARD and card is not None:
        view.card = card.shown()
    if dues:
        latest = max(dues, key=lambda d: (d.at, d.event_id))
        view.due_date, view.due_date_provisional = latest.due_date, latest.provisional
    return view
