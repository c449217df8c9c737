"""Extension of the issuing time (延长): issuance, which owns the clock, moves the due date.

Intake checked the request (before the card is ready, at most 10 working days in total) and
recorded it; here the same rules are checked against the deadline itself, which is the truth
about whether the card is ready. A refused grant (the card became ready meanwhile, or the total
would pass 10 working days) changes nothing and is logged. The grant's event id makes a repeat
one fact: `sla.extended` carries an id derived from it, and the stored deadline remembers which
grants it applied.
"""

from __future__ import annotations

from permits_common.clock import Clock
from permits_common.domain.extension import extension_fits
from permits_common.events.envelope import derived_event_id
from permits_common.events.models import ApplicationExtensionGranted, SlaExtended
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_issuance.adapters.store import IssuanceStore
from permits_issuance.domain.deadline import extended
from permits_issuance.metrics import SLA_EXTENSION_DAYS, SLA_EXTENSIONS
from permits_issuance.service.calendar import CalendarHolder
from permits_issuance.service.deadlines import calendar_fields, moved_fields, schedule_of

log = get_logger("extensions")


class DeadlineExtensions:
    """Applies operators' extensions to deadlines and publishes `sla.extended`."""

    def __init__(
        self,
        store: IssuanceStore,
        publisher: EventPublisher,
        calendar: CalendarHolder,
        clock: Clock,
        at_risk_working_days: int,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._calendar = calendar
        self._clock = clock
        self._at_risk_days = at_risk_working_days

    async def grant(self, grant_id: str, data: ApplicationExtensionGranted) -> bool:
        """Move the due date by the granted working days; False when the grant was refused."""
        doc = await self._store.deadline(data.application_id)
        if doc is None:
            log.warning("extension for an unknown deadline ignored")
            return False
        if grant_id in doc.get("extension_grants", []):
            return True
        before = schedule_of(doc)
        if not doc.get("open", False):
            log.warning("extension after the card was ready refused", point=data.acceptance_point)
            return False
        if not extension_fits(before.extension_days, data.working_days):
            log.warning("extension past 10 working days refused", point=data.acceptance_point)
            return False
        after = extended(self._calendar.current, before, data.working_days, self._at_risk_days)
        await self._publisher.publish(
            self._publisher.event(
                SlaExtended(
                    application_id=data.application_id,
                    acceptance_point=data.acceptance_point,
                    due_date=after.due_date,
                    accepted_on=after.accepted_on,
                    old_due_date=before.due_date,
                    new_due_date=after.due_date,
                    working_days=data.working_days,
                    total_working_days=after.extension_days,
                    reason=data.reason,
                    provisional=after.provisional,
                    **calendar_fields(after.calendar),
                ),
                event_id=derived_event_id(grant_id, "sla.extended"),
            )
        )
        await self._store.deadlines.update_one(
            {"_id": data.application_id},
            {
                "$set": moved_fields(doc, after, self._clock.today()),
                "$push": {"extension_grants": grant_id},
            },
        )
        SLA_EXTENSIONS.labels(data.acceptance_point).inc()
        SLA_EXTENSION_DAYS.labels(data.acceptance_point).inc(data.working_days)
        return True
