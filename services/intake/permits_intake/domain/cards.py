"""What intake knows of cards, built from `permits.cards.v1`: enough to check renewals and
reissues, to refuse a first application from a holder, and to report a card lost or revoke it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from permits_common.domain import travel_permit
from permits_common.domain.card import ApplicationKind, HolderStatus
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.models import (
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    EventData,
)
from permits_intake.domain.eligibility import Refusal
from permits_intake.domain.forms import ApplicationForm


@dataclass(frozen=True, slots=True)
class CardView:
    """The latest issue of one card number and its holder status."""

    number: str
    issue_count: int
    status: HolderStatus
    holder: str
    """The holder's travel-permit base number: who the card belongs to."""
    valid_from: date | None = None
    valid_until: date | None = None
    issuing_authority: str | None = None
    application_id: str | None = None


_STATUS_OF_EVENT: dict[type[EventData], HolderStatus] = {
    CardReportedLost: HolderStatus.REPORTED_LOST,
    CardRevoked: HolderStatus.REVOKED,
    CardExpired: HolderStatus.EXPIRED,
}


def apply_card_event(current: CardView | None, event: EventData) -> CardView | None:
    """The view after a card event, or None when the event changes nothing we track.

    Only the latest issue counts: an event about an older issue (e.g. `card.superseded` of
    the issue a renewal replaced) leaves the view alone.
    """
    if isinstance(event, CardIssued):
        if current is not None and current.issue_count > event.issue_count:
            return None
        return CardView(
            number=event.card_number,
            issue_count=event.issue_count,
            status=HolderStatus.ACTIVE,
            holder=travel_permit.base_number(event.travel_permit_number),
            valid_from=event.valid_from,
            valid_until=event.valid_until,
            issuing_authority=event.issuing_authority,
            application_id=event.application_id,
        )
    if current is None or not isinstance(
        event, (CardReportedLost, CardRevoked, CardExpired, CardSuperseded)
    ):
        return None
    if event.issue_count != current.issue_count:
        return None
    if isinstance(event, CardSuperseded):
        new_status = HolderStatus.SUPERSEDED
    else:
        new_status = _STATUS_OF_EVENT[type(event)]
    if not status_may_change(current.status, new_status):
        return None
    return replace(current, status=new_status)


def status_may_change(current: HolderStatus, new: HolderStatus) -> bool:
    """Revocation is final; a lost card cannot come back or merely expire."""
    if current == new or current is HolderStatus.REVOKED:
        return False
    return not (current is HolderStatus.REPORTED_LOST and new is HolderStatus.EXPIRED)


def card_refusals(form: ApplicationForm, card: CardView | None) -> list[Refusal]:
    """A renewal or reissue replaces an existing card of the same person."""
    if form.kind is ApplicationKind.FIRST:
        return []
    if card is None:
        return [
            Refusal(RuleCode.CARD_NOT_FOUND, "card_number", "no card with this number is known")
        ]
    if card.holder != travel_permit.base_number(form.applicant.travel_permit_number):
        return [
            Refusal(
                RuleCode.CARD_NOT_HOLDERS,
                "card_number",
                "the card belongs to another person than the applicant",
            )
        ]
    if card.status is HolderStatus.REVOKED:
        return [
            Refusal(
                RuleCode.CARD_NOT_REPLACEABLE,
                "card_number",
                "a revoked card cannot be renewed or reissued",
            )
        ]
    return []


def may_report_lost(card: CardView) -> bool:
    """Only a card in force can be reported lost."""
    return card.status is HolderStatus.ACTIVE


def may_revoke(card: CardView) -> bool:
    """Revocation applies to any latest issue not already revoked."""
    return card.status is not HolderStatus.REVOKED
