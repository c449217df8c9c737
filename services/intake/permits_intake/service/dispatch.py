"""A clerk posts a card the applicant asked to have sent (邮寄领取): `ready` → `dispatched`,
with the carrier and its tracking number; delivery is then confirmed by `collect`.

The status change and its `application.dispatched` event are one conditional write (the
outbox relay publishes it), so two clerks dispatching at once post it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.card import ApplicationStatus
from permits_common.events.envelope import derived_event_id, new_event
from permits_common.events.models import ApplicationDispatched
from permits_common.web.auth import Principal
from permits_intake.adapters.store import IntakeStore, outbox_entry
from permits_intake.domain.collection import collection_of, may_dispatch
from permits_intake.service.applications import (
    SOURCE,
    application_not_found,
    forbidden_point,
    invalid_state,
)


class CardDispatch:
    """Handing a posted card to the carrier."""

    def __init__(
        self, store: IntakeStore, clock: Clock, on_outbox_write: Callable[[str], None]
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_outbox_write = on_outbox_write

    async def dispatch(
        self, principal: Principal, application_id: str, carrier: str, tracking_number: str
    ) -> dict[str, Any]:
        """Only a ready card whose applicant chose post; 409 otherwise."""
        document = await self._store.application(application_id)
        if document is None:
            raise application_not_found()
        if not principal.may_act_for_point(document["acceptance_point"]):
            raise forbidden_point()
        card = document.get("card")
        status = ApplicationStatus(document["status"])
        if not may_dispatch(status, collection_of(document.get("collection"))) or not card:
            raise invalid_state(status.value, "dispatched")
        now = self._clock.now()
        dispatched = ApplicationDispatched(
            application_id=application_id,
            acceptance_point=document["acceptance_point"],
            card_number=card["number"],
            carrier=carrier,
            tracking_number=tracking_number,
            dispatched_on=self._clock.today(),
        )
        event = new_event(
            dispatched,
            source=SOURCE,
            event_id=derived_event_id(application_id, dispatched.event_type()),
            time=now,
        )
        moved = await self._store.advance_status(
            application_id,
            ApplicationStatus.DISPATCHED,
            [ApplicationStatus.READY],
            now,
            fields={
                "dispatch": {
                    "carrier": carrier,
                    "tracking_number": tracking_number,
                    "dispatched_on": dispatched.dispatched_on.isoformat(),
                }
            },
            outbox=outbox_entry(event.id, event.to_json()),
        )
        if not moved:
            current = await self._store.application(application_id)
            raise invalid_state(current["status"] if current else "unknown", "dispatched")
        self._on_outbox_write(application_id)
        updated = await self._store.application(application_id)
        if updated is None:
            raise application_not_found()
        return updated
