"""Apply card events to the holder register and announce every status change to the agencies.

Order of effects per batch, chosen so a crash at any point loses nothing and repeats nothing
visible: (1) new statuses are stored with `published = false`; (2) webhook deliveries are queued
in the store (ids derived from the fact, so a repeat inserts nothing); (3) feed events go to every
agency topic, with deterministic ids; (4) the statuses are marked published and the register
changelog is appended. A crash before (4) leaves `published = false`, and `republish_pending` at
start-up re-sends exactly those facts with the same ids.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
from permits_rights.adapters.register_changelog import publish_entries
from permits_rights.adapters.store import DeliveryLog, FeedLog, HolderStore
from permits_rights.domain.holder import DETAIL_FIELDS, CardHistory, RegisterEntry, StatusChange
from permits_rights.domain.policy import AgencyPolicy
from permits_rights.domain.register import RegisterIndex
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
        holders: HolderStore,
        feed_log: FeedLog,
        deliveries: DeliveryLog,
        publisher: EventPublisher,
        policies: Mapping[Agency, AgencyPolicy],
        webhook_agencies: frozenset[Agency],
        index: RegisterIndex,
        register_topic: str,
        wake_webhooks: Callable[[Agency], None],
    ) -> None:
        self._holders = holders
        self._feed_log = feed_log
        self._deliveries = deliveries
        self._publisher = publisher
        self._feeds = [p for p in policies.values() if p.feed]
        self._webhook_agencies = webhook_agencies & {p.agency for p in self._feeds}
        self._index = index
        self._register_topic = register_topic
        self._wake_webhooks = wake_webhooks
        self._seq = itertools.count()

    async def handle(self, events: Sequence[Event[Any]]) -> None:
        """Apply a batch of card events (other event types on the topic are ignored)."""
        card_events = [e for e in events if isinstance(e.data, CARD_EVENTS)]
        if not card_events:
            return
        histories = await self._holders.load(e.subject for e in card_events)
        changes: list[StatusChange] = []
        for event in card_events:
            changes += apply_event(histories[event.data.card_number], event)
        touched = [h for h in histories.values() if h.touched]
        if not touched:
            return
        await self._holders.save(touched, changes)
        await self._announce(changes, histories)
        entries = {h.card_number: e for h in touched if (e := h.entry()) is not None}
        await self._update_register(entries)

    async def republish_pending(self) -> int:
        """Re-send statuses stored but never acknowledged (a crash between store and broker)."""
        total = 0
        while queued := await self._holders.unpublished():
            histories = await self._holders.load(c.card_number for c in queued)
            changes = [c for c in queued if _stored(c, histories)]
            if not changes:
                break
            await self._announce(changes, histories)
            entries = {n: e for n, h in histories.items() if (e := h.entry()) is not None}
            await self._update_register(entries)
            total += len(changes)
        return total

    async def _update_register(self, entries: dict[str, RegisterEntry]) -> None:
        await publish_entries(self._publisher.producer, self._register_topic, entries)
        for number, entry in entries.items():
            self._index.apply(number, entry)

    async def _announce(
        self, changes: Sequence[StatusChange], histories: Mapping[str, CardHistory]
    ) -> None:
        if not changes:
            return
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
        await self._deliveries.enqueue(queued)
        await self._publisher.publish_all(feed, exclude_none=True)
        acknowledged = datetime.now(UTC)
        for event in feed:
            DELIVERIES.labels(event.data.agency, "published").inc()
            DELIVERY_LAG.labels(event.data.agency).observe(
                max(0.0, (acknowledged - event.time).total_seconds())
            )
        await self._feed_log.record(changes, [p.agency.value for p in self._feeds], acknowledged)
        await self._holders.mark_published(changes)
        for agency in {Agency(d["agency"]) for d in queued}:
            self._wake_webhooks(agency)

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


def _stored(change: StatusChange, histories: Mapping[str, CardHistory]) -> bool:
    """The register already holds this status: a change queued by a save still under way is
    left for the next round (the queue entry is written before the issue)."""
    record = histories[change.card_number].issues.get(change.issue_count)
    return record is not None and record.status is change.status
