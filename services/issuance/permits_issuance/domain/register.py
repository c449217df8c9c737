"""Which applications the card register allows, and what card number and issue count they get.

Intake checks what it can see at the counter; the register (one lifelong number and one valid
card per person, keyed by travel-permit base number) lives here, so issuance has the last word.

Decisions that the spec leaves open, taken here:
- a first application from a person who already has a number keeps that number (it is for
  life) and gets the next issue count, unless the current card is still valid, which is refused
  with `duplicate_open_application`;
- a renewal refers to the person's current card when it is active or expired;
- a reissue refers to the person's current card only once it is reported lost; a reissue for a
  card not yet reported lost is refused with `card_not_replaceable` (report it lost first);
- a revoked card is never renewed or reissued (`card_not_replaceable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from permits_common.domain.card import ApplicationKind, HolderStatus
from permits_common.domain.rule_codes import RuleCode


@dataclass(frozen=True, slots=True)
class HolderRecord:
    """What the register knows of one person: the lifelong number and the latest issue."""

    travel_permit_base: str
    card_number: str
    issue_count: int
    status: HolderStatus
    valid_until: date

    def status_on(self, today: date) -> HolderStatus:
        """The status as of today: an active card past its last day is expired."""
        if self.status is HolderStatus.ACTIVE and today > self.valid_until:
            return HolderStatus.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class Approval:
    """Go ahead: `card_number` None means a new number must be allocated."""

    card_number: str | None
    issue_count: int
    supersedes_issue_count: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """No card: the rule that failed, in words safe to show the applicant."""

    code: RuleCode
    message: str
    field: str | None = None


Decision = Approval | Refusal


def decide(
    kind: ApplicationKind,
    requested_card_number: str | None,
    holder: HolderRecord | None,
    *,
    requested_card_belongs_to_other: bool,
    today: date,
) -> Decision:
    """Check an accepted application against the person's entry in the register."""
    if kind is ApplicationKind.FIRST:
        return _first(holder, today)
    if not requested_card_number:
        return Refusal(
            RuleCode.CARD_NUMBER_REQUIRED,
            f"a {kind.value} names the card it replaces",
            "card_number",
        )
    if holder is None or holder.card_number != requested_card_number:
        if requested_card_belongs_to_other:
            return Refusal(
                RuleCode.CARD_NOT_HOLDERS, "the card belongs to another person", "card_number"
            )
        return Refusal(RuleCode.CARD_NOT_FOUND, "no such card in the register", "card_number")
    status = holder.status_on(today)
    if status is HolderStatus.REVOKED:
        return Refusal(
            RuleCode.CARD_NOT_REPLACEABLE,
            "a revoked card cannot be renewed or reissued",
            "card_number",
        )
    allowed = _REPLACEABLE[kind]
    if status not in allowed:
        return Refusal(RuleCode.CARD_NOT_REPLACEABLE, _NOT_REPLACEABLE[kind], "card_number")
    return Approval(holder.card_number, holder.issue_count + 1, holder.issue_count)


def _first(holder: HolderRecord | None, today: date) -> Decision:
    if holder is None:
        return Approval(None, 1)
    if holder.status_on(today) is HolderStatus.ACTIVE:
        return Refusal(
            RuleCode.DUPLICATE_OPEN_APPLICATION,
            "the person already holds a valid card; apply for a renewal or reissue",
        )
    return Approval(holder.card_number, holder.issue_count + 1)


_REPLACEABLE: dict[ApplicationKind, frozenset[HolderStatus]] = {
    ApplicationKind.RENEWAL: frozenset({HolderStatus.ACTIVE, HolderStatus.EXPIRED}),
    ApplicationKind.REISSUE: frozenset({HolderStatus.REPORTED_LOST}),
}
_NOT_REPLACEABLE: dict[ApplicationKind, str] = {
    ApplicationKind.RENEWAL: "a card reported lost is reissued, not renewed",
    ApplicationKind.REISSUE: "only a card reported lost is reissued; report it lost first, "
    "or renew an expired card",
}
