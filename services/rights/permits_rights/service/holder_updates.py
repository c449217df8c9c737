"""Apply card events to the holder register and announce every status change to the agencies.

The register (every card's issues, statuses and printed details) is held in memory and rebuilt
from its compacted changelog topic, so a batch of card events costs no store reads. Order of
effects per batch, chosen so a crash at any point loses nothing and repeats nothing visible:
(1) webhook deliveries are queued in the store (ids derived from the fact, so a repeat inserts
nothing); (2) feed events go to every agency topic (acks=all, deterministic ids), then their
audit entries (each with its feed event's id); (3) the cards' new records, with when each
status was acknowledged (the feed log), go to the changelog topic, and only then into memory.
A crash before (3) leaves the changelog without the change, so the redelivered batch announces
it again, with the same ids; after (3) the rebuilt register holds it. A batch is tens of
thousands of records, so each step publishes them in record batches per partition
(`EventPublisher.publish_records`), built as JSON without a model per record.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from permits_common.domain.agencies import Agency
from permits_common.domain.card import HolderStatus
from permits_common.events.envelope import Event, derived_event_ids, envelope_json, json_time
from permits_common.events.models import (
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    HolderStatusChanged,
)
from permits_common.events.topics import rights_topic
from permits_common.kafka import EventPublisher
from permits_common.mongo import Document
from permits_common.streams import retry_forever
from permits_rights.adapters.register_changelog import (
    RegisterRecords,
    changelog_records,
    encode_record,
)
from permits_rights.adapters.store import DeliveryLog
from permits_rights.domain.holder import DETAIL_FIELDS, CardHistory, StatusChange
from permits_rights.domain.policy import ENVELOPE_FIELDS, IDENTIFYING_FIELDS, AgencyPolicy
from permits_rights.service import access_audit
from permits_rights.service.access_audit import FEED_PUBLISHED
from permits_rights.service.json_template import JsonTemplate, encode, hole
from permits_rights.service.metrics import DELIVERIES, DELIVERY_LAG, observe_all

SOURCE = "rights"
RECORD_BATCH_BYTES = 512 * 1024
"""Record batch size of the rights publisher: a batch of 1,000 card events puts ~1.2 MB of
audit entries on each partition of the audit topic, and the producer holds one batch per
partition at a time, so 16 KB batches (the default) waited for the broker 75 times in a row.
Below the broker's largest accepted batch (1 MB by default)."""

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


_FEED_TYPE = HolderStatusChanged.event_type()
_FEED_FIELDS: tuple[str, ...] = tuple(HolderStatusChanged.model_fields)
"""The feed event's data fields in the model's order (its JSON keys come out in this order)."""


@dataclass(frozen=True, slots=True)
class FeedShape:
    """What one agency's feed events hold, worked out once from its policy: the fields after
    the five every event has (agency, card number, issue, status, change time), in order, and
    the event's JSON with holes for the values that change."""

    agency: str
    topic: str
    details: tuple[str, ...]
    template: JsonTemplate

    @classmethod
    def of(cls, policy: AgencyPolicy) -> FeedShape:
        if not policy.fields >= IDENTIFYING_FIELDS:
            raise ValueError(f"{policy.agency.value} has no per-card feed")
        first = IDENTIFYING_FIELDS | ENVELOPE_FIELDS
        agency = policy.agency.value
        data = {
            "agency": agency,
            "card_number": hole("number"),
            "issue_count": hole("issue"),
            "status": hole("status"),
            "changed_at": hole("time"),
        }
        written = envelope_json(hole("id"), SOURCE, _FEED_TYPE, hole("time"), hole("number"), data)
        # The details an event carries vary (empty ones are left out): they go in as one piece
        # after the five fields every event has, before the data's and the envelope's ends.
        with_details = written[: -len(b"}}")] + encode(hole("details")) + b"}}"
        return cls(
            agency,
            rights_topic(policy.agency),
            tuple(name for name in _FEED_FIELDS if name in policy.fields - first),
            JsonTemplate(with_details, _FEED_HOLES),
        )


_FEED_HOLES = ("id", "time", "number", "number", "issue", "status", "time", "details")


class FeedEvent(NamedTuple):
    """One agency's `holder.status` event, already in its wire form (`body`)."""

    id: str
    agency: str
    topic: str
    change: StatusChange
    body: bytes
    key: bytes
    """The Kafka key: the card number."""


def feed_events(
    shapes: Sequence[FeedShape], change: StatusChange, details: Mapping[str, Any]
) -> list[FeedEvent]:
    """Each agency's view of a status change: only its allowed fields, no empty ones; the id
    depends only on the fact, so re-emitting after a crash produces the same event. Built
    straight to JSON (a dozen per card event; a model per event cost more than publishing
    it): the tests hold it equal to what the `HolderStatusChanged` model writes."""
    number, issue, status = change.card_number, change.issue_count, change.status.value
    changed_at = encode(json_time(change.changed_at))
    encoded_number, encoded_issue, encoded_status = encode(number), encode(issue), encode(status)
    present = {
        name: b",%s:%s" % (encode(name), encode(value))
        for name, value in details.items()
        if value is not None
    }
    ids = derived_event_ids((number, issue, status), [shape.agency for shape in shapes])
    key = number.encode()
    events = []
    for shape, event_id in zip(shapes, ids, strict=True):
        body = shape.template.fill(
            f'"{event_id}"'.encode(),
            changed_at,
            encoded_number,
            encoded_number,
            encoded_issue,
            encoded_status,
            changed_at,
            b"".join([present[name] for name in shape.details if name in present]),
        )
        events.append(FeedEvent(event_id, shape.agency, shape.topic, change, body, key))
    return events


def feed_event(policy: AgencyPolicy, change: StatusChange, details: Mapping[str, Any]) -> FeedEvent:
    """One agency's view of a status change (see `feed_events`)."""
    return feed_events([FeedShape.of(policy)], change, details)[0]


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
        audit_topic: str | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._publisher = publisher
        feeds = [p.agency for p in policies.values() if p.feed]
        self._shapes = [FeedShape.of(policies[agency]) for agency in feeds]
        self._webhook_agencies = frozenset(a.value for a in webhook_agencies if a in feeds)
        self._records = records
        self._register_topic = register_topic
        self._wake_webhooks = wake_webhooks
        self._audit_topic = audit_topic
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
        changelog = changelog_records(self._register_topic, records)
        await retry_forever(lambda: self._publisher.publish_records(changelog))
        for number, value in records.items():
            self._records.apply(number, value)

    async def _announce(
        self, changes: Sequence[StatusChange], histories: Mapping[str, CardHistory]
    ) -> datetime:
        """Queue the webhook deliveries, publish the feed events, then their audit entries;
        when the broker had the feed events."""
        now = datetime.now(UTC)
        feed: list[FeedEvent] = []
        queued: list[Document] = []
        seq_base = time.time_ns()
        for change in changes:
            record = histories[change.card_number].issues.get(change.issue_count)
            details = record.details if record else {}
            for event in feed_events(self._shapes, change, details):
                feed.append(event)
                if event.agency in self._webhook_agencies:
                    queued.append(self._delivery(event, now, seq_base))
        if queued:
            await retry_forever(lambda: self._deliveries.enqueue(queued))
        records = [(event.topic, event.key, event.body) for event in feed]
        await retry_forever(lambda: self._publisher.publish_records(records))
        acknowledged = datetime.now(UTC)
        if self._audit_topic is not None:
            entries = access_audit.feed_entries(feed, acknowledged, self._audit_topic)
            await retry_forever(lambda: self._publisher.publish_records(entries))
            access_audit.count_published(FEED_PUBLISHED, len(entries))
        self._count(changes, acknowledged)
        for agency in {Agency(d["agency"]) for d in queued}:
            self._wake_webhooks(agency)
        return acknowledged

    def _count(self, changes: Sequence[StatusChange], acknowledged: datetime) -> None:
        """Deliveries published and their lag, per agency: every agency's feed event of a
        change was acknowledged at the same moment, so each agency's histogram takes the same
        observations, counted once per batch (`observe_all`)."""
        lags = [max(0.0, (acknowledged - c.changed_at).total_seconds()) for c in changes]
        for shape in self._shapes:
            DELIVERIES.labels(shape.agency, "published").inc(len(changes))
        observe_all(DELIVERY_LAG, [shape.agency for shape in self._shapes], lags)

    def _delivery(self, event: FeedEvent, now: datetime, base: int) -> Document:
        change = event.change
        return {
            "_id": event.id,
            "agency": event.agency,
            "card_number": change.card_number,
            "issue_count": change.issue_count,
            "status": change.status.value,
            "body": event.body.decode(),
            "event_time": change.changed_at,
            "created_at": now,
            "seq": base + next(self._seq),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
