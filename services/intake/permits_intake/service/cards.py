"""A clerk reports a card lost, an operator revokes one: the holder status changes at once.

The event is published (and acknowledged by Kafka) before the answer, so agencies learn of it
without delay; its id is derived from the card issue, so a retry after a failure is one fact.
"""

from __future__ import annotations

from dataclasses import replace

from permits_common.clock import Clock
from permits_common.domain.card import HolderStatus
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.envelope import derived_event_id
from permits_common.events.models import CardReportedLost, CardRevoked, EventData
from permits_common.kafka import EventPublisher
from permits_common.web.auth import Principal
from permits_common.web.problems import ProblemError
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.cards import CardView, may_report_lost, may_revoke


class CardActions:
    """Report lost and revoke, checked against the card view."""

    def __init__(self, store: IntakeStore, clock: Clock, publisher: EventPublisher) -> None:
        self._store = store
        self._clock = clock
        self._publisher = publisher

    async def report_lost(self, principal: Principal, number: str) -> CardView:
        """The lost card is invalid from this moment (补领 follows)."""
        card = await self._known_card(number)
        if not may_report_lost(card):
            raise _not_now(card, "reported lost")
        data = CardReportedLost(
            card_number=card.number,
            issue_count=card.issue_count,
            reported_at=self._clock.now(),
            acceptance_point=principal.scope if principal.kind == "clerk" else None,
        )
        return await self._change(card, data, HolderStatus.REPORTED_LOST)

    async def revoke(self, number: str, reason: str) -> CardView:
        """Revocation (注销): the holder no longer qualifies, or the card was obtained by fraud."""
        card = await self._known_card(number)
        if not may_revoke(card):
            raise _not_now(card, "revoked")
        data = CardRevoked(
            card_number=card.number,
            issue_count=card.issue_count,
            reason=reason,
            revoked_at=self._clock.now(),
        )
        return await self._change(card, data, HolderStatus.REVOKED)

    async def _known_card(self, number: str) -> CardView:
        card = await self._store.card(number)
        if card is None:
            raise ProblemError(
                404, RuleCode.CARD_NOT_FOUND.value, "Card not found", "No card with this number"
            )
        return card

    async def _change(self, card: CardView, data: EventData, new: HolderStatus) -> CardView:
        event_id = derived_event_id(data.event_type(), card.number, card.issue_count)
        await self._publisher.publish(self._publisher.event(data, event_id=event_id))
        updated = await self._store.set_card_status(card.number, card.issue_count, card.status, new)
        return updated or replace(card, status=new)


def _not_now(card: CardView, action: str) -> ProblemError:
    return ProblemError(
        409,
        RuleCode.INVALID_STATE.value,
        "Invalid state",
        f"The card is {card.status.value}; it cannot be {action}",
    )
