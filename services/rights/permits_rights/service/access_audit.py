"""What the rights service tells the audit trail: each verification answer and each holder
status handed to an agency (on its feed topic or by webhook), with the agency and its duty."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from permits_common.audit import AuditTrail, AuditUnavailableError
from permits_common.events.envelope import Event
from permits_common.events.models import HolderStatusChanged

FEED_PUBLISHED = "feed.published"
WEBHOOK_DELIVERED = "webhook.delivered"
RETRY_SECONDS = 1.0


async def feed_published(
    trail: AuditTrail | None, feed: Sequence[Event[HolderStatusChanged]]
) -> None:
    """One entry per agency feed event, after the broker has it (the agency can read it)."""
    if trail is None or not feed:
        return
    await asyncio.gather(
        *(
            trail.record(
                None,
                FEED_PUBLISHED,
                event.data.card_number,
                event.data.status.value,
                agency=event.data.agency,
                purpose="holder status feed",
            )
            for event in feed
        )
    )


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
