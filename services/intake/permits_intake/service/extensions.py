"""An operator extends an application's issuing time (延长, at most 10 working days in total,
before the card is ready).

`application.extension_granted` is on Kafka before the answer (its id derives from the
application and the total granted, so a retry is the same fact), then the extension and the new
due date are appended as steps of the view. Issuance, which owns the clock, moves the deadline
and answers with `sla.extended`, which the status view follows. The answer already shows the
new due date, counted on this process's calendar, which is the calendar issuance counts with.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.calendar import ISSUING_WORKING_DAYS
from permits_common.domain.card import ApplicationStatus
from permits_common.domain.extension import (
    MAX_EXTENSION_WORKING_DAYS,
    extension_fits,
    extension_in_time,
)
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.envelope import derived_event_id, new_event
from permits_common.events.models import ApplicationExtensionGranted
from permits_common.kafka import EventPublisher
from permits_common.web.problems import ProblemError
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.progress import DueStep, ExtensionStep, Step
from permits_intake.service.applications import SOURCE, application_not_found
from permits_intake.service.calendar import CalendarBook


class DeadlineExtension:
    """The operator's extension of one application's deadline."""

    def __init__(
        self,
        store: IntakeStore,
        clock: Clock,
        calendar: CalendarBook,
        publisher: EventPublisher,
    ) -> None:
        self._store = store
        self._clock = clock
        self._calendar = calendar
        self._publisher = publisher

    async def grant(self, application_id: str, working_days: int, reason: str) -> dict[str, Any]:
        """Extend by `working_days`; 409 `extension_too_late` once the card is ready (or the
        application refused), 422 `extension_too_long` past 10 working days in total."""
        record = await self._store.application(application_id)
        if record is None:
            raise application_not_found()
        shown = record.shown()
        granted_so_far = _refuse_unless_allowed(shown, working_days)
        total = granted_so_far + working_days
        accepted_on = date.fromisoformat(shown["accepted_on"])
        due = self._calendar.calendar.due_date(accepted_on, ISSUING_WORKING_DAYS + total)
        now = self._clock.now()
        granted = ApplicationExtensionGranted(
            application_id=application_id,
            acceptance_point=shown["acceptance_point"],
            working_days=working_days,
            total_working_days=total,
            reason=reason,
            granted_at=now,
        )
        event = new_event(
            granted,
            source=SOURCE,
            event_id=derived_event_id(application_id, granted.event_type(), total),
            time=now,
        )
        await self._publisher.publish(event)
        steps: list[Step] = [
            ExtensionStep(total, reason, now),
            DueStep(
                due.due_date,
                due.provisional,
                now,
                event.id,
                self._calendar.stamp(accepted_on, due.due_date).as_document(),
            ),
        ]
        await self._store.append_steps([(application_id, step) for step in steps])
        return record.with_steps(steps).shown()


def _refuse_unless_allowed(document: dict[str, Any], working_days: int) -> int:
    """The working days granted so far, or the refusal the law gives."""
    status = ApplicationStatus(document["status"])
    if not extension_in_time(status):
        raise ProblemError(
            409,
            RuleCode.EXTENSION_TOO_LATE.value,
            "Extension too late",
            f"The application is {status.value}; an extension is granted before the card is ready",
        )
    granted_so_far = int(document.get("extension_days") or 0)
    if not extension_fits(granted_so_far, working_days):
        raise ProblemError(
            422,
            RuleCode.EXTENSION_TOO_LONG.value,
            "Extension too long",
            f"{granted_so_far} working days were granted already; at most "
            f"{MAX_EXTENSION_WORKING_DAYS} working days may be granted in total",
            errors=[
                {
                    "field": "working_days",
                    "code": RuleCode.EXTENSION_TOO_LONG.value,
                    "message": f"at most {MAX_EXTENSION_WORKING_DAYS - granted_so_far} more",
                }
            ],
        )
    return granted_so_far
