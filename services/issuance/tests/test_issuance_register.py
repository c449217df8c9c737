"""The register's decisions: one valid card per person, renewal, reissue, revocation."""

from __future__ import annotations

from datetime import date

import pytest

from permits_common.domain.card import ApplicationKind, HolderStatus
from permits_common.domain.rule_codes import RuleCode
from permits_issuance.domain.register import Approval, HolderRecord, Refusal, decide

TODAY = date(2026, 6, 1)
CARD = "810000199001010019"


def holder(status: HolderStatus, valid_until: date = date(2030, 1, 1)) -> HolderRecord:
    return HolderRecord("H12345678", CARD, 2, status, valid_until)


def run(
    kind: ApplicationKind,
    who: HolderRecord | None,
    card: str | None = CARD,
    *,
    other: bool = False,
) -> Approval | Refusal:
    return decide(kind, card, who, requested_card_belongs_to_other=other, today=TODAY)


def test_first_application_of_a_new_person_needs_a_new_number() -> None:
    assert run(ApplicationKind.FIRST, None, None) == Approval(None, 1)


def test_a_person_with_a_valid_card_cannot_apply_again() -> None:
    refusal = run(ApplicationKind.FIRST, holder(HolderStatus.ACTIVE), None)
    assert isinstance(refusal, Refusal)
    assert refusal.code is RuleCode.DUPLICATE_OPEN_APPLICATION


def test_a_returning_person_keeps_the_lifelong_number() -> None:
    assert run(ApplicationKind.FIRST, holder(HolderStatus.EXPIRED), None) == Approval(CARD, 3)


@pytest.mark.parametrize("status", [HolderStatus.ACTIVE, HolderStatus.EXPIRED])
def test_renewal_of_an_active_or_expired_card(status: HolderStatus) -> None:
    assert run(ApplicationKind.RENEWAL, holder(status)) == Approval(CARD, 3, 2)


def test_an_active_card_past_its_last_day_counts_as_expired() -> None:
    stale = holder(HolderStatus.ACTIVE, valid_until=date(2026, 5, 31))
    assert stale.status_on(TODAY) is HolderStatus.EXPIRED
    assert run(ApplicationKind.REISSUE, stale).code is RuleCode.CARD_NOT_REPLACEABLE  # type: ignore[union-attr]


def test_reissue_only_after_the_card_is_reported_lost() -> None:
    assert run(ApplicationKind.REISSUE, holder(HolderStatus.REPORTED_LOST)) == Approval(CARD, 3, 2)
    refusal = run(ApplicationKind.REISSUE, holder(HolderStatus.ACTIVE))
    assert isinstance(refusal, Refusal)
    assert refusal.code is RuleCode.CARD_NOT_REPLACEABLE


def test_a_lost_card_is_not_renewed() -> None:
    refusal = run(ApplicationKind.RENEWAL, holder(HolderStatus.REPORTED_LOST))
    assert isinstance(refusal, Refusal)
    assert refusal.code is RuleCode.CARD_NOT_REPLACEABLE


@pytest.mark.parametrize("kind", [ApplicationKind.RENEWAL, ApplicationKind.REISSUE])
def test_a_revoked_card_is_never_replaced(kind: ApplicationKind) -> None:
    refusal = run(kind, holder(HolderStatus.REVOKED))
    assert isinstance(refusal, Refusal)
    assert refusal.code is RuleCode.CARD_NOT_REPLACEABLE


def test_unknown_and_foreign_cards() -> None:
    assert run(ApplicationKind.RENEWAL, None).code is RuleCode.CARD_NOT_FOUND  # type: ignore[union-attr]
    foreign = run(ApplicationKind.RENEWAL, None, other=True)
    assert isinstance(foreign, Refusal)
    assert foreign.code is RuleCode.CARD_NOT_HOLDERS
    missing = run(ApplicationKind.RENEWAL, holder(HolderStatus.ACTIVE), None)
    assert isinstance(missing, Refusal)
    assert missing.code is RuleCode.CARD_NUMBER_REQUIRED
