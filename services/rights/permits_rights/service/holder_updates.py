"""Apply card events to the holder register and announce every status change to the agencies.

The register (every card's issues, statuses and printed details) is held in memory and rebuilt
from its compacted changelog topic, so a batch of card events costs no store reads. Order of
effects per batch, chosen so a crash at any point loses nothing and repeats nothing visible:
(1) webhook deliveries are queued in the store (ids derived from the fact, so a repeat inserts
nothing); (2) feed events go to every agency topic (acks=all, deterministic ids); (3) the cards'
new records, with when each status was acknowledged (the feed log), go to the changelog topic,
and only then into memory. A crash before (3) leaves the changelog without the change, so the
redelivered batch announces it again, with the same ids; after (3) the rebuilt register holds it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from permits_common.audit import AuditTrail
from permits_common.domain.agencies import Agency
from permits_common.domain.card import HolderStatus
from permits_common.events.envelope import Event, derived_event_id, new_event
from permits_common.events.models import (
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    HolderStatusChanged,
)
from permits_common.kafka import EventPublisher
from permits_common.mongo import Document
from permits_common.streams import retry_forever
from permits_rights.adapters.register_changelog import (
    RegisterRecords,
    encode_record,
    publish_records,
)
from permits_rights.adapters.store import DeliveryLog
from permits_rights.domain.holder import DETAIL_FIELDS, CardHistory, StatusChange
from permits_rights.domain.policy import AgencyPolicy
from permits_rights.service import access_audit
from permits_rights.service.metrics import DELIVERIES, DELIVERY_LAG

SOURCE = "rights"

_STATUS_OF_EVENT: dict[type[Any], HolderStatus] = {
    CardReportedLost: HolderStatus.REPORTED_LOST,
    CardSuperseded: HolderStatus.SUPERSEDED,
    CardRevoked: HolderStatus.REVOKED,
    CardExpired: HolderStatus.EXPIRED,
}
CARD_EVENTS: tuple[type[Any], ...] = (CardIssued, *_STATUS_OF_EVENT)


def apply_event(history: CardHistory, event: Event[Any]) -> list[StatusChange]:
    """One card event against one card's history (idempotent; see domain.holder)."""
    data = event.data
    if isinstance(data, CardIssued):
        details = data.model_dump(mode="json", include=set(DETAIL_FIELDS))
        return history.record_issued(data.issue_count, details, event.time)
    return history.record_status(data.issue_count, _STATUS_OF_EVENT[type(data)], event.time)


def feed_event(
    policy: AgencyPolicy, change: StatusChange, details: Mapping[str, Any]
) -> Event[HolderStatusChanged]:
    """The agency's view of a status change: only its allowed fields; the id depends only on
    the fact, so re-emitting after a crash produces the same event."""
    full: dict[str, Any] = {
        **details,
        "agency": policy.agency.value,
        "card_number": change.card_number,
        "issue_count": change.issue_count,
        "status": change.status.value,
        "changed_at": change.changed_at,
    }
    data = HolderStatusChanged(**policy.allowed(full))
    return new_event(
        data,
        source=SOURCE,
        event_id=derived_event_id(
            change.card_number, change.issue_count, change.status.value, policy.agency.value
        ),
        time=change.changed_at,
    )


class HolderUpdates:
    """The register's only writer (driven by the cards.v1 agent)."""

    def __init__(
        self,
        *,
        deliveries: DeliveryLog,
        publisher: EventPublisher,
        policies: Mapping[Agency, AgencyPolicy],
        webhook_agencies: frozenset[Agency],
        records: RegisterRecords,
        register_topic: str,
        wake_webhooks: Callable[[Agency], None],
        audit: AuditTrail | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._publisher = publisher
        self._feeds = [p for p in policies.values() if p.feed]
        self._webhook_agencies = webhook_agencies & {p.agency for p in self._feeds}
        self._records = records
        self._register_topic = register_topic
        self._wake_webhooks = wake_webhooks
        self._audit = audit
        self._seq = itertools.count()

    async def handle(self, events: Sequence[Event[Any]]) -> None:
        """Apply a batch of card events (other event types on the topic are ignored). Each
        step retries outages by itself, so a step that succeeded is not repeated."""
        card_events = [e for e in events if isinstance(e.data, CARD_EVENTS)]
        if not card_events:
            return
        histories = {
            number: self._records.history(number)
            for number in {e.data.card_number for e in card_events}
        }
        changes: list[StatusChange] = []
        for event in card_events:
            changes += apply_event(histories[event.data.card_number], event)
        if changes:
            acknowledged = await self._announce(changes, histories)
            for change in changes:
                histories[change.card_number].published([change], acknowledged)
        records = {
            h.card_number: encode_record(entry, h)
            for h in histories.values()
            if h.touched and (entry := h.entry()) is not None
        }
        if not records:
            return
        await retry_forever(
            lambda: publish_records(self._publisher.producer, self._register_topic, records)
        )
        for number, value in records.items():
            self._records.apply(number, value)

    async def _announce(
        self, changes: Sequence[StatusChange], histories: Mapping[str, CardHistory]
    ) -> datetime:
        """Queue the webhook deliveries and publish the feed events; when the broker had them."""
        now = datetime.now(UTC)
        feed: list[Event[HolderStatusChanged]] = []
        queued: list[Document] = []
        seq_base = time.time_ns()
        for change in changes:
            record = histories[change.card_number].issues.get(change.issue_count)
            details = record.details if record else {}
            for policy in self._feeds:
                event = feed_event(policy, change, details)
                feed.append(event)
                if policy.agency in self._webhook_agencies:
                    queued.append(self._delivery(event, change, now, seq_base))
        await retry_forever(lambda: self._deliveries.enqueue(queued))
        await retry_forever(lambda: self._publisher.publish_all(feed, exclude_none=True))
        await access_audit.feed_published(self._audit, feed)
        acknowledged = datetime.now(UTC)
        for event in feed:
            DELIVERIES.labels(event.data.agency, "published").inc()
            DELIVERY_LAG.labels(event.data.agency).observe(
                max(0.0, (acknowledged - event.time).total_seconds())
            )
        for agency in {Agency(d["agency"]) for d in queued}:
            self._wake_webhooks(agency)
        return acknowledged

    def _delivery(
        self, event: Event[HolderStatusChanged], change: StatusChange, now: datetime, base: int
    ) -> Document:
        return {
            "_id": event.id,
            "agency": event.data.agency,
            "card_number": change.card_number,
            "issue_count": change.issue_count,
            "status": change.status.value,
            "body": event.to_json(exclude_none=True).decode(),
            "event_time": change.changed_at,
            "created_at": now,
            "seq": base + next(self._seq),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
