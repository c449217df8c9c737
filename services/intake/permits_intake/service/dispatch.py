"""A clerk posts a card the applicant asked to have sent (邮寄领取): `ready` → `dispatched`,
with the carrier and its tracking number; delivery is then confirmed by `collect`.

`application.dispatched` is on Kafka before the answer; its id derives from the application,
so a retry, or a second clerk dispatching at the same moment, is the same fact, and the view
keeps the first dispatch step recorded.
"""

from __future__ import annotations

from typing import Any

from permits_common.clock import Clock
from permits_common.domain.card import ApplicationStatus
from permits_common.events.envelope import derived_event_id, new_event
from permits_common.events.models import ApplicationDispatched
from permits_common.kafka import EventPublisher
from permits_common.web.auth import Principal
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.collection import collection_of, may_dispatch
from permits_intake.domain.progress import StatusStep, dispatch_shown
from permits_intake.service.applications import (
    SOURCE,
    application_not_found,
    forbidden_point,
    invalid_state,
)


class CardDispatch:
    """Handing a posted card to the carrier."""

    def __init__(self, store: IntakeStore, clock: Clock, publisher: EventPublisher) -> None:
        self._store = store
        self._clock = clock
        self._publisher = publisher

    async def dispatch(
        self, principal: Principal, application_id: str, carrier: str, tracking_number: str
    ) -> dict[str, Any]:
        """Only a ready card whose applicant chose post; 409 otherwise."""
        record = await self._store.application(application_id)
        if record is None:
            raise application_not_found()
        shown = record.shown()
        if not principal.may_act_for_point(shown["acceptance_point"]):
            raise forbidden_point()
        card = shown.get("card")
        status = ApplicationStatus(shown["status"])
        if not may_dispatch(status, collection_of(shown.get("collection"))) or not card:
            raise invalid_state(status.value, "dispatched")
        now = self._clock.now()
        dispatched = ApplicationDispatched(
            application_id=application_id,
            acceptance_point=shown["acceptance_point"],
            card_number=card["number"],
            carrier=carrier,
            tracking_number=tracking_number,
            dispatched_on=self._clock.today(),
        )
        await self._publisher.publish(
            new_event(
                dispatched,
                source=SOURCE,
                event_id=derived_event_id(application_id, dispatched.event_type()),
                time=now,
            )
        )
        step = StatusStep(ApplicationStatus.DISPATCHED, now, dispatch=dispatch_shown(dispatched))
        await self._store.append_steps([(application_id, step)])
        return record.with_steps([step]).shown()
