"""What the rights service tells the audit trail: each verification answer and each holder
status handed to an agency (on its feed topic or by webhook), with the agency and its duty."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from permits_common.audit import AUDIT_PUBLISHED, AuditTrail, AuditUnavailableError
from permits_common.events.envelope import envelope_json, json_time
from permits_common.events.models import AuditAccess
from permits_common.partition_batches import KeyedRecord
from permits_rights.service.json_template import JsonTemplate, encode, hole

if TYPE_CHECKING:
    from permits_rights.domain.holder import StatusChange
    from permits_rights.service.holder_updates import FeedEvent

SERVICE = "rights"
FEED_PUBLISHED = "feed.published"
FEED_PURPOSE = "holder status feed"
WEBHOOK_DELIVERED = "webhook.delivered"
RETRY_SECONDS = 1.0
_SOURCE = f"/permits/{SERVICE}"
_AUDIT_TYPE = AuditAccess.event_type()
_SYSTEM = {"id": "system", "role": "system"}


def feed_entries(feed: Sequence[FeedEvent], at: datetime, topic: str) -> list[KeyedRecord]:
    """One entry per agency feed event, `at` when the broker had them (the agency can read
    them from then on). Built straight to JSON like the feed events (the tests hold them equal
    to the `AuditAccess` model's) and published with the batch, not through the trail's
    buffer: the agent retries them until the broker has them instead of failing a request.
    An entry carries its feed event's id (CloudEvents ids are unique per source, and the two
    sources differ), so a batch handled again after a crash repeats no entry (the trail keeps
    one entry per id) and an entry names the very event the agency received."""
    moment = json_time(at)
    data = {
        "at": moment,
        "actor": _SYSTEM,
        "service": SERVICE,
        "action": FEED_PUBLISHED,
        "subject_id": hole("number"),
        "outcome": hole("status"),
        "agency": hole("agency"),
        "purpose": FEED_PURPOSE,
    }
    template = JsonTemplate(
        envelope_json(hole("id"), _SOURCE, _AUDIT_TYPE, moment, hole("number"), data),
        ("id", "number", "number", "status", "agency"),
    )
    fill = template.fill
    records: list[KeyedRecord] = []
    agencies: dict[str, bytes] = {}
    last: StatusChange | None = None
    number = status = b""
    for event in feed:
        if event.change is not last:
            last = event.change
            number, status = encode(last.card_number), encode(last.status.value)
        agency = agencies.get(event.agency)
        if agency is None:
            agency = agencies[event.agency] = encode(event.agency)
        body = fill(f'"{event.id}"'.encode(), number, number, status, agency)
        records.append((topic, event.key, body))
    return records


def count_published(action: str, entries: int) -> None:
    """Entries published outside the trail's buffer count in the same metric."""
    AUDIT_PUBLISHED.labels(SERVICE, action).inc(entries)


async def webhook_delivered(
    trail: AuditTrail | None, agency: str, card_number: str, status: str
) -> None:
    """One entry per holder status the agency's endpoint accepted. The agency has the data
    already, so the entry is retried until the trail takes it rather than given up."""
    while trail is not None:
        try:
            await trail.record(
                None,
                WEBHOOK_DELIVERED,
                card_number,
                status,
                agency=agency,
                purpose="holder status webhook",
            )
        except AuditUnavailableError:
            await asyncio.sleep(RETRY_SECONDS)
            continue
        return
