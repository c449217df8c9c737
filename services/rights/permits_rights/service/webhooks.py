"""Webhook delivery: one worker per agency, so a slow or dead endpoint only delays itself.

The queue is the store's delivery log (durable: a restart resumes pending deliveries). Within
one agency, events of one card go out in order (a card's next event waits for the previous one),
while different cards are delivered concurrently up to a bound. After the retry budget an event
goes to the dead-letter topic with the reason, and the card's later events proceed. The outcomes
of one round of attempts are recorded together (one insert, one delete); a failed attempt's
next try is the one update in place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from permits_common.audit import AuditTrail
from permits_common.domain.agencies import Agency
from permits_common.events.envelope import derived_event_id
from permits_common.events.models import DeadLetter
from permits_common.events.topics import rights_topic
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_common.streams import retry_forever
from permits_rights.adapters.store import DeliveryLog, DeliveryOutcome, PendingDelivery
from permits_rights.adapters.webhook_client import WebhookClient, WebhookFailedError
from permits_rights.config import WebhookTarget
from permits_rights.domain.throttle import backoff_delay
from permits_rights.service import access_audit
from permits_rights.service.metrics import DELIVERIES, DELIVERY_LAG, PENDING_WEBHOOKS

log = get_logger("webhooks")

IDLE_POLL_SECONDS = 30.0
PENDING_PAGE = 500


class WebhookDispatcher:
    """Runs the per-agency delivery loops; `wake` is called when new deliveries are queued."""

    def __init__(
        self,
        *,
        targets: Mapping[Agency, WebhookTarget],
        deliveries: DeliveryLog,
        client: WebhookClient,
        publisher: EventPublisher,
        consumer_name: str,
        max_attempts: int,
        backoff_seconds: float,
        backoff_max_seconds: float,
        concurrency: int,
        audit: AuditTrail | None = None,
    ) -> None:
        self._targets = dict(targets)
        self._deliveries = deliveries
        self._client = client
        self._publisher = publisher
        self._consumer_name = consumer_name
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._backoff_cap = backoff_max_seconds
        self._concurrency = concurrency
        self._audit = audit
        self._wakeups = {agency: asyncio.Event() for agency in self._targets}
        self._stopping = False

    def wake(self, agency: Agency) -> None:
        """New deliveries for an agency are queued."""
        event = self._wakeups.get(agency)
        if event is not None:
            event.set()

    async def run(self) -> None:
        """Deliver for every registered agency until stopped or cancelled."""
        await asyncio.gather(*(self._run_agency(target) for target in self._targets.values()))

    def stop(self) -> None:
        """Finish the current round of attempts and record its outcomes, then return from
        `run`: a delivery posted but not recorded would be posted again after a restart."""
        self._stopping = True
        for wakeup in self._wakeups.values():
            wakeup.set()

    async def _run_agency(self, target: WebhookTarget) -> None:
        wakeup = self._wakeups[target.agency]
        slots = asyncio.Semaphore(self._concurrency)
        await retry_forever(lambda: self._deliveries.drop_settled(target.agency.value))
        while not self._stopping:
            wakeup.clear()
            pending = await retry_forever(
                lambda: self._deliveries.pending(target.agency.value, PENDING_PAGE)
            )
            PENDING_WEBHOOKS.labels(target.agency.value).set(len(pending))
            heads: dict[str, PendingDelivery] = {}
            for delivery in pending:
                heads.setdefault(delivery.card_number, delivery)
            now = datetime.now(UTC)
            due = [d for d in heads.values() if d.next_attempt_at <= now]
            if due:
                outcomes = await asyncio.gather(*(self._attempt(target, d, slots) for d in due))
                settled = [o for o in outcomes if o is not None]
                await retry_forever(lambda s=settled: self._deliveries.settle(s))
                for outcome in settled:
                    self._count(outcome)
                continue
            wait = min(
                [(d.next_attempt_at - now).total_seconds() for d in heads.values()]
                + [IDLE_POLL_SECONDS]
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=max(wait, 0.01))

    async def _attempt(
        self, target: WebhookTarget, delivery: PendingDelivery, slots: asyncio.Semaphore
    ) -> DeliveryOutcome | None:
        """One attempt; the outcome once the delivery is settled, None when it waits for a
        retry."""
        async with slots:
            try:
                await self._client.post(target.url, target.secret, delivery.event_id, delivery.body)
            except WebhookFailedError as exc:
                return await self._failed(target, delivery, str(exc))
        await access_audit.webhook_delivered(
            self._audit, target.agency.value, delivery.card_number, delivery.status
        )
        return DeliveryOutcome(delivery, "delivered", datetime.now(UTC))

    def _count(self, outcome: DeliveryOutcome) -> None:
        delivery = outcome.delivery
        if outcome.outcome == "delivered":
            DELIVERIES.labels(delivery.agency, "delivered").inc()
            DELIVERY_LAG.labels(delivery.agency).observe(
                max(0.0, (outcome.at - delivery.event_time).total_seconds())
            )
        else:
            DELIVERIES.labels(delivery.agency, "deadletter").inc()

    async def _failed(
        self, target: WebhookTarget, delivery: PendingDelivery, error: str
    ) -> DeliveryOutcome | None:
        agency = target.agency.value
        attempts = delivery.attempts + 1
        now = datetime.now(UTC)
        if attempts < self._max_attempts:
            delay = backoff_delay(attempts, self._backoff, self._backoff_cap)
            await retry_forever(
                lambda: self._deliveries.retry_later(
                    delivery, error, now, now + timedelta(seconds=delay)
                )
            )
            DELIVERIES.labels(agency, "retry").inc()
            return None
        reason = f"webhook delivery to {agency} failed after {attempts} attempts: {error}"
        dead = DeadLetter(
            original_topic=rights_topic(agency),
            original_key=delivery.card_number,
            original_value=delivery.body.decode(),
            consumer=f"{self._consumer_name}-webhook-{agency}",
            error=reason,
        )
        await retry_forever(
            lambda: self._publisher.publish(
                self._publisher.event(
                    dead, event_id=derived_event_id("deadletter", delivery.event_id)
                )
            )
        )
        log.warning("webhook delivery dead-lettered", agency=agency, attempts=attempts, error=error)
        return DeliveryOutcome(delivery, "failed", now, error)
