"""The register's view of card news from intake, and card expiry.

Lost and revoked cards come from intake's counter (`card.reported_lost`, `card.revoked`) and
only change the person's current issue. Expiry is found by a timer that asks the store for
active issues past `valid_until` (indexed), so only what is due is read.
"""

from __future__ import annotations

from typing import Any

from permits_common.clock import Clock
from permits_common.domain.card import HolderStatus
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import CardExpired, CardReportedLost, CardRevoked
from permits_common.kafka import EventPublisher
from permits_issuance.adapters.store import IssuanceStore, day_of

_SCAN_BATCH = 1000


class RegisterService:
    """Keeps holder status current: lost, revoked, expired."""

    def __init__(self, store: IssuanceStore, publisher: EventPublisher, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock

    @staticmethod
    def wants_card_event(event: Event[Any]) -> bool:
        """Only intake's lost and revoked cards change the register here."""
        return isinstance(event.data, CardReportedLost | CardRevoked)

    async def handle_card_event(self, event: Event[Any]) -> None:
        """Apply intake's card news; our own card events need nothing here."""
        data = event.data
        if isinstance(data, CardReportedLost):
            await self._store.set_holder_status(
                data.card_number, data.issue_count, HolderStatus.REPORTED_LOST
            )
        elif isinstance(data, CardRevoked):
            await self._store.set_holder_status(
                data.card_number, data.issue_count, HolderStatus.REVOKED
            )

    async def expire_due(self) -> int:
        """Publish `card.expired` for every active issue past its last valid day."""
        today = self._clock.today()
        expired = 0
        async for doc in self._store.expired_cards(today, _SCAN_BATCH):
            card_number, issue_count = str(doc["card_number"]), int(doc["issue_count"])
            await self._publisher.publish(
                self._publisher.event(
                    CardExpired(
                        card_number=card_number,
                        issue_count=issue_count,
                        valid_until=day_of(doc["valid_until"]),
                    ),
                    event_id=derived_event_id(card_number, issue_count, "card.expired"),
                )
            )
            await self._store.set_holder_status(card_number, issue_count, HolderStatus.EXPIRED)
            expired += 1
        return expired
