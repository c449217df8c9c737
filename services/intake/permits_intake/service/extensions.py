"""An operator extends an application's issuing time (延长, at most 10 working days in total,
before the card is ready).

The extension and its `application.extension_granted` event are one conditional write (the
outbox relay publishes it); issuance, which owns the clock, moves the deadline and answers with
`sla.extended`, which the status view follows. The answer already shows the new due date,
counted on this process's calendar, which is the calendar issuance counts with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.calendar import ISSUING_WORKING_DAYS
from permits_common.domain.card import ApplicationStatus
from permits_common.domain.extension import (
    MAX_EXTENSION_WORKING_DAYS,
    STATUSES_BEFORE_READY,
    extension_fits,
    extension_in_time,
)
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.envelope import derived_event_id, new_event
from permits_common.events.models import ApplicationExtensionGranted
from permits_common.web.problems import ProblemError
from permits_intake.adapters.store import IntakeStore, outbox_entry
from permits_intake.service.applications import SOURCE, application_not_found
from permits_intake.service.calendar import CalendarBook


class DeadlineExtension:
    """The operator's extension of one application's deadline."""

    def __init__(
        self,
        store: IntakeStore,
        clock: Clock,
        calendar: CalendarBook,
        on_outbox_write: Callable[[str], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._calendar = calendar
        self._on_outbox_write = on_outbox_write

    async def grant(self, application_id: str, working_days: int, reason: str) -> dict[str, Any]:
        """Extend by `working_days`; 409 `extension_too_late` once the card is ready (or the
        application refused), 422 `extension_too_long` past 10 working days in total."""
        document = await self._store.application(application_id)
        if document is None:
            raise application_not_found()
        granted_so_far = _refuse_unless_allowed(document, working_days)
        total = granted_so_far + working_days
        accepted_on = date.fromisoformat(document["accepted_on"])
        due = self._calendar.calendar.due_date(accepted_on, ISSUING_WORKING_DAYS + total)
        now = self._clock.now()
        granted = ApplicationExtensionGranted(
            application_id=application_id,
            acceptance_point=document["acceptance_point"],
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
        recorded = await self._store.record_extension(
            application_id,
            granted_so_far=granted_so_far,
            before_ready=STATUSES_BEFORE_READY,
            fields={
                "extension_days": total,
                "extension": {"working_days": total, "reason": reason, "granted_at": now},
                "due_date": due.due_date.isoformat(),
                "due_date_provisional": due.provisional,
                "calendar": self._calendar.stamp(accepted_on, due.due_date).as_document(),
            },
            grant={"working_days": working_days, "reason": reason, "granted_at": now},
            outbox=outbox_entry(event.id, event.to_json()),
        )
        if not recorded:
            current = await self._store.application(application_id)
            if current is None:
                raise application_not_found()
            _refuse_unless_allowed(current, working_days)
            raise ProblemError(
                409,
                RuleCode.INVALID_STATE.value,
                "Changed meanwhile",
                "Another extension was recorded at the same moment; read the application "
                "and try again",
            )
        self._on_outbox_write(application_id)
        updated = await self._store.application(application_id)
        if updated is None:
            raise application_not_found()
        return updated


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
