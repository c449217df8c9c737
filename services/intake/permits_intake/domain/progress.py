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
    ApplicationDispatched,
    ApplicationExtensionGranted,
    ApplicationInProduction,
    ApplicationReady,
    ApplicationRejected,
    CardIssued,
    EventData,
    SlaAtRisk,
    SlaBreached,
    SlaExtended,
    SlaMet,
    SlaRescheduled,
    SlaScheduled,
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


_WITH_CARD = frozenset(
    {ApplicationStatus.READY, ApplicationStatus.DISPATCHED, ApplicationStatus.COLLECTED}
)
_RANK = {status: rank for rank, status in enumerate(ApplicationStatus)}
_HANDED_OVER = {ApplicationStatus.DISPATCHED: 1, ApplicationStatus.COLLECTED: 2}
"""Steps taken by a clerk only after `ready`: ordered after the others whatever the clocks."""


@dataclass(frozen=True, slots=True)
class StatusStep:
    """The application reached a status (with what that status brings)."""

    status: ApplicationStatus
    at: datetime
    ready_on: date | None = None
    rejection: dict[str, str] | None = None
    dispatch: dict[str, str] | None = None
    """For `dispatched`: the carrier, its tracking number and the day the card was posted."""

    @property
    def key(self) -> str:
        """One step per status: a repeated event is the same step."""
        return self.status.value


@dataclass(frozen=True, slots=True)
class SlaStep:
    """A deadline standing was announced (`at`: when; a warning or breach announced before
    an extension no longer stands)."""

    standing: SlaState
    at: datetime | None = None
    event_id: str = ""

    @property
    def key(self) -> str:
        """One step per announcement: after an extension, issuance may warn again."""
        return f"sla:{self.standing.value}:{self.event_id}"


@dataclass(frozen=True, slots=True)
class DueStep:
    """The due date was scheduled or recomputed; the latest announcement counts."""

    due_date: date
    provisional: bool
    at: datetime
    event_id: str
    calendar: dict[str, Any] | None = None
    """The calendar the date was counted with (version, official and provisional years)."""
    extended: bool = False
    """Issuance moved the date by an extension: earlier warnings and breaches no longer stand."""

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


@dataclass(frozen=True, slots=True)
class ExtensionStep:
    """An operator extended the issuing time; the largest total granted counts."""

    working_days: int
    """The total granted so far, this grant included."""
    reason: str
    granted_at: datetime

    @property
    def key(self) -> str:
        """One step per total: a repeated grant is the same step."""
        return f"extension:{self.working_days}"

    def shown(self) -> dict[str, Any]:
        """The extension as the application view shows it."""
        return {
            "working_days": self.working_days,
            "reason": self.reason,
            "granted_at": self.granted_at,
        }


Step = StatusStep | SlaStep | DueStep | CardStep | ExtensionStep


def calendar_shown(event: SlaScheduled | SlaRescheduled | SlaExtended) -> dict[str, Any] | None:
    """The calendar a deadline event was counted with, as the view shows it."""
    if event.calendar_version is None:
        return None
    return {
        "version": event.calendar_version,
        "provisional": bool(event.provisional_years),
        "official_years": list(event.official_years),
        "provisional_years": list(event.provisional_years),
    }


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
                dispatch=dispatch_shown(data) if isinstance(data, ApplicationDispatched) else None,
            )
        ]
    standing = sla_of(data)
    if standing is not None:
        return [SlaStep(standing, at, event_id)]
    if isinstance(data, (SlaScheduled, SlaRescheduled, SlaExtended)):
        return [
            DueStep(
                data.due_date,
                data.provisional,
                at,
                event_id,
                calendar_shown(data),
                extended=isinstance(data, SlaExtended),
            )
        ]
    if isinstance(data, ApplicationExtensionGranted):
        return [ExtensionStep(data.total_working_days, data.reason, data.granted_at)]
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


def dispatch_shown(data: ApplicationDispatched) -> dict[str, str]:
    """A posted card's carrier and tracking number, as the view shows them."""
    return {
        "carrier": data.carrier,
        "tracking_number": data.tracking_number,
        "dispatched_on": data.dispatched_on.isoformat(),
    }


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
    dispatch: dict[str, str] | None = None
    calendar: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None


def fold(
    accepted_at: datetime,
    due_date: date,
    due_date_provisional: bool,
    steps: Iterable[Step],
) -> Progress:
    """The view of an accepted application after its steps, in any order of arrival.

    Statuses are taken in the order they happened (by the time of their events, to the
    microsecond; dispatch and collection, which only follow `ready`, last), each only if it
    moves the application forward. A status that comes with the card
    (`ready`, `dispatched`, `collected`) counts only once the issued card is known: the card and the
    `ready` step are announced on two topics, and the view shows both or neither.
    """
    statuses: list[StatusStep] = []
    announced: list[SlaStep] = []
    dues: list[DueStep] = []
    extensions: list[ExtensionStep] = []
    card: CardStep | None = None
    for step in steps:
        if isinstance(step, StatusStep):
            statuses.append(step)
        elif isinstance(step, SlaStep):
            announced.append(step)
        elif isinstance(step, DueStep):
            dues.append(step)
        elif isinstance(step, ExtensionStep):
            extensions.append(step)
        else:
            card = step
    extension = max(extensions, key=lambda e: e.working_days, default=None)
    view = Progress(
        status=ApplicationStatus.ACCEPTED,
        history=[{"status": ApplicationStatus.ACCEPTED.value, "at": accepted_at}],
        sla=_standing(announced, dues),
        due_date=due_date,
        due_date_provisional=due_date_provisional,
    )
    statuses.sort(key=lambda s: (_HANDED_OVER.get(s.status, 0), s.at, _RANK[s.status]))
    for step in statuses:
        if not status_advances(view.status, step.status):
            continue
        if step.status in _WITH_CARD and card is None:
            continue
        view.status = step.status
        view.history.append({"status": step.status.value, "at": step.at})
        view.ready_on = step.ready_on or view.ready_on
        view.rejection = step.rejection or view.rejection
        view.dispatch = step.dispatch or view.dispatch
    if view.status in _WITH_CARD and card is not None:
        view.card = card.shown()
    if dues:
        latest = max(dues, key=lambda d: (d.at, d.event_id))
        view.due_date, view.due_date_provisional = latest.due_date, latest.provisional
        view.calendar = latest.calendar
    if extension is not None:
        view.extension = extension.shown()
    return view


def _standing(announced: Iterable[SlaStep], dues: Iterable[DueStep]) -> SlaState:
    """The most definite standing announced; a warning or breach announced before issuance
    moved the due date by an extension no longer stands (issuance raises them again when due;
    both come from issuance's clock, so their times compare)."""
    extended_at = max((due.at for due in dues if due.extended), default=None)
    standings = [SlaState.ON_TRACK]
    for step in announced:
        moved = (
            extended_at is not None
            and step.standing in (SlaState.AT_RISK, SlaState.BREACHED)
            and step.at is not None
            and step.at < extended_at
        )
        if not moved:
            standings.append(step.standing)
    return max(standings, key=_SLA_RANK.__getitem__)
