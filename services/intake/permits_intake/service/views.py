"""Status views kept current from `permits.applications.v1`, `permits.sla.v1` and
`permits.cards.v1`.

Every handler is safe to run twice (the consumer deduplicates on event id as well): status and
deadline standing only move forward, card views only follow the latest issue.
"""

from __future__ import annotations

from typing import Any

from permits_common.domain.card import ApplicationStatus, status_advances
from permits_common.events.envelope import Event
from permits_common.events.models import (
    ApplicationApproved,
    ApplicationInProduction,
    ApplicationReady,
    ApplicationRejected,
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    SlaExtended,
    SlaRescheduled,
    SlaScheduled,
)
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.cards import apply_card_event
from permits_intake.domain.deadline_view import deadline_fields
from permits_intake.domain.progress import (
    closes_application,
    sla_of,
    sla_states_before,
    status_of,
)

_CARD_EVENTS = (CardIssued, CardReportedLost, CardRevoked, CardExpired, CardSuperseded)


class StatusViews:
    """Applies consumed events to the application and card views."""

    def __init__(self, store: IntakeStore) -> None:
        self._store = store

    async def handle(self, event: Event[Any]) -> None:
        """One event; events about applications this intake never accepted change nothing."""
        data = event.data
        status = status_of(data)
        if status is not None:
            await self._follow_status(event, status)
            return
        if isinstance(data, (SlaScheduled, SlaRescheduled, SlaExtended)):
            await self._deadline_moved(data)
            return
        standing = sla_of(data)
        if standing is not None:
            application_id = str(data.subject())
            progress = await self._store.progress_of(application_id)
            if progress is not None and progress[1] in sla_states_before(standing):
                await self._store.set_sla(application_id, standing)
            return
        if isinstance(data, _CARD_EVENTS):
            await self._card_event(data)

    async def _deadline_moved(self, data: SlaScheduled | SlaRescheduled | SlaExtended) -> None:
        """Issuance scheduled, recomputed or extended the deadline: its date and calendar."""
        standing = None
        if isinstance(data, SlaExtended):
            progress = await self._store.progress_of(data.application_id)
            if progress is None:
                return
            standing = progress[1]
        await self._store.set_due_date(
            data.application_id, data.due_date, data.provisional, deadline_fields(data, standing)
        )

    async def _follow_status(self, event: Event[Any], status: ApplicationStatus) -> None:
        """Move the application to the status an event announces, if that is a step forward
        (a redelivered or late event changes nothing)."""
        data = event.data
        progress = await self._store.progress_of(data.application_id)
        if progress is None:
            return
        if status_advances(progress[0], status):
            fields: dict[str, Any] = {}
            if isinstance(data, ApplicationReady):
                fields["ready_on"] = data.ready_on.isoformat()
            if isinstance(data, ApplicationRejected):
                fields["rejection"] = {"code": data.code, "message": data.message}
            await self._store.record_status(
                data.application_id,
                status,
                event.time,
                fields=fields,
                release_person=closes_application(status),
            )
        if isinstance(data, (ApplicationApproved, ApplicationInProduction, ApplicationReady)):
            await self._store.set_assigned_card(
                data.application_id, data.card_number, data.issue_count
            )

    async def _card_event(
        self,
        data: CardIssued | CardReportedLost | CardRevoked | CardExpired | CardSuperseded,
    ) -> None:
        current = await self._store.card(data.card_number)
        updated = apply_card_event(current, data)
        if updated is not None:
            await self._store.save_card(updated)
        if isinstance(data, CardIssued):
            await self._store.set_card(
                data.application_id,
                number=data.card_number,
                issue_count=data.issue_count,
                valid_from=data.valid_from,
                valid_until=data.valid_until,
                issuing_authority=data.issuing_authority,
            )
