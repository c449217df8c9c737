"""What the application view records when issuance schedules, recomputes or extends a deadline.

The calendar a due date was computed with travels on every `sla.scheduled`, `sla.rescheduled`
and `sla.extended`; the view keeps it so `GET /applications/{id}` can say why a date is what it
is. An extension moves the date forward, so a warning or breach of the old date no longer
stands; issuance raises them again for the new date when they fall due.
"""

from __future__ import annotations

from typing import Any

from permits_common.domain.card import SlaState
from permits_common.events.models import SlaExtended, SlaRescheduled, SlaScheduled


def deadline_fields(
    event: SlaScheduled | SlaRescheduled | SlaExtended, standing: SlaState | None
) -> dict[str, Any]:
    """View fields beyond the due date itself: the calendar behind it, and after an extension
    the standing it gives back (`standing` is the one the view holds now)."""
    fields: dict[str, Any] = {}
    if event.calendar_version is not None:
        fields["calendar"] = {
            "version": event.calendar_version,
            "provisional": bool(event.provisional_years),
            "official_years": list(event.official_years),
            "provisional_years": list(event.provisional_years),
        }
    if isinstance(event, SlaExtended):
        fields["extension_days"] = event.total_working_days
        if standing in (SlaState.AT_RISK, SlaState.BREACHED):
            fields["sla"] = SlaState.ON_TRACK.value
    return fields
