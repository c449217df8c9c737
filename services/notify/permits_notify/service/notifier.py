"""The notify use cases: learn recipients from events, queue deliveries, send what is due.

Exactly-once toward the applicant, as far as the channels allow:
- a delivery is written (log entry and work item) under the unique key (cause event id,
  channel) BEFORE anything is sent, so a redelivered event finds it and adds nothing;
- each attempt is claimed by a unique insert (a whole pass's claims in one command) before the
  send, so two workers never send the same attempt, and a crash leaves a work item whose claim
  is taken over once its lease has run out;
- the outcome event is published before the outcome is recorded and the work item removed, so
  a crash in between sends again (see below) and re-publishes with the same event id;
- the window between "provider accepted" and "recorded as sent" is closed as far as the
  provider lets us: the delivery id travels as the SMS gateway's idempotency key (a resend is
  answered from the gateway's memory, not sent again) and as the email's Message-ID (a rare
  resent email is recognisably the same message).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import jinja2

from permits_common.clock import Clock
from permits_common.domain.card import CollectionMethod
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import (
    ApplicationAccepted,
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    NotificationFailed,
    NotificationSent,
)
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher
from permits_common.logs import get_logger
from permits_common.mongo import Document
from permits_common.reference import acceptance_points_by_code
from permits_notify.adapters.channels import Sender, SendError
from permits_notify.adapters.store import DELIVERED, FAILED, SENT, NotifyStore, work_item
from permits_notify.adapters.templates import TemplateRenderer, template_name
from permits_notify.domain.composing import (
    UNKNOWN_POINT,
    PointDetails,
    compose,
    compose_expiry_reminder,
    greeting_name,
)
from permits_notify.domain.masking import contact_key, mask_contact
from permits_notify.domain.messages import (
    Channel,
    Message,
    MessageType,
    Recipient,
    delivery_id,
    resolve_language,
)
from permits_notify.domain.routing import FallBack, RetryLater, after_failure
from permits_notify.domain.scheduling import (
    REMINDER_DAYS_BEFORE,
    SHANGHAI,
    QuietHours,
    RateLimit,
    RetryPolicy,
    quiet_hours_release,
    reminder_due_at,
    reminder_still_relevant,
)
from permits_notify.service.metrics import NOTIFICATIONS, SEND_SECONDS

log = get_logger("notify")
LEFTOVER_SCAN_SECONDS = 30.0
"""How often the timer looks for outcomes whose event did not reach Kafka, besides right after
this process failed to publish one (and at its first pass, for what a crash left)."""

NOTIFYING_EVENT_TYPES = frozenset(
    {
        "permits.application.accepted",
        "permits.application.rejected",
        "permits.application.ready",
        "permits.application.dispatched",
        "permits.application.collected",
        "permits.sla.at_risk",
        "permits.sla.breached",
        "permits.sla.extended",
        "permits.sla.rescheduled",
        "permits.card.reported_lost",
        "permits.card.revoked",
    }
)
CARD_ENDINGS = (CardSuperseded, CardReportedLost, CardRevoked, CardExpired)
LEARNED_FROM = (ApplicationAccepted, CardIssued, *CARD_ENDINGS)
"""Events that change what notify knows (recipients, card issues, reminders)."""


def needs_claim(event: Event[Any]) -> bool:
    """Notify claims no event: everything a batch writes is keyed by what caused it (a
    recipient by application, card issues and reminders by card issue, a delivery by cause
    event and channel; a cancelled reminder stays cancelled), so a repeated event writes
    nothing new and queues no second message (`NotificationStore.create_deliveries` queues
    only deliveries new to the log, and a logged one without an outcome only once). A claim
    would cost the store a document per event for nothing."""
    return False


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """When and how often to try: quiet hours, rate limit, retries, claim lease, scan size."""

    quiet_hours: QuietHours = field(default_factory=QuietHours)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease: timedelta = timedelta(seconds=60)
    batch: int = 200
    concurrency: int = 16
    reminder_scan_every: timedelta = timedelta(seconds=60)
    """Reminders are due on a day, and every card in force has some scheduled: scanning them
    once a minute instead of every pass keeps the timer cheap as the cards add up."""


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one dispatch pass did (returned by the dev clock endpoint)."""

    reminders: int
    attempted: int
    published: int


def point_details(code: str | None) -> PointDetails:
    """Name, address and phone of an acceptance point from the shipped reference data."""
    point = acceptance_points_by_code().get(code or "")
    if point is None:
        return UNKNOWN_POINT
    return PointDetails(name=point.name, address=point.address, phone=point.phone)


class NotificationService:
    """Turns events into deliveries and sends the due ones."""

    def __init__(
        self,
        *,
        store: NotifyStore,
        renderer: TemplateRenderer,
        senders: Mapping[Channel, Sender],
        publisher: EventPublisher,
        clock: Clock,
        policy: DeliveryPolicy,
    ) -> None:
        self._store = store
        self._renderer = renderer
        self._senders = senders
        self._publisher = publisher
        self._clock = clock
        self._policy = policy
        self._pass_lock = asyncio.Lock()
        self._next_reminder_scan: datetime | None = None
        self._queued: dict[str, Document] = {}
        """Work items this process queued and has not tried yet: a kicked pass sends them
        without scanning the store (the timer's scan finds whatever is left)."""
        self._next_leftover_scan: float | None = None

    @property
    def clock(self) -> Clock:
        """The service clock (moved by the dev endpoint outside production)."""
        return self._clock

    # Ingest --------------------------------------------------------------------------------

    @staticmethod
    def wants(event: Event[Any]) -> bool:
        """Whether notify does anything with this event (the others are not even claimed)."""
        return event.type in NOTIFYING_EVENT_TYPES or isinstance(event.data, LEARNED_FROM)

    async def handle(self, event: Event[Any]) -> None:
        """Update what we know from one event and queue the message it means, if any."""
        await self.handle_batch([event])

    async def handle_batch(self, events: Sequence[Event[Any]]) -> None:
        """Learn from a batch of events and queue the messages they mean, appending what they
        add with one insert per collection (recipients, card issues, reminders, deliveries)."""
        now = _to_millis(self._clock.now())
        await self._store.save_recipients(
            [recipient_from(e.data) for e in events if isinstance(e.data, ApplicationAccepted)]
        )
        issued = [e.data for e in events if isinstance(e.data, CardIssued)]
        await self._store.map_cards(
            [(c.card_number, c.issue_count, c.application_id) for c in issued]
        )
        await self._store.schedule_reminders([r for c in issued for r in _reminders(c, now)])
        for event in events:
            if isinstance(event.data, CARD_ENDINGS):
                data = event.data
                await self._store.cancel_reminders(
                    reminder_ids(data.card_number, data.issue_count),
                    event.type.removeprefix("permits."),
                    now,
                )
        deliveries: list[Document] = []
        for event in events:
            if event.type in NOTIFYING_EVENT_TYPES:
                delivery = await self._delivery_for(event, now)
                if delivery is not None:
                    deliveries.append(delivery)
        await self._queue(deliveries)

    async def _queue(self, deliveries: list[Document]) -> list[str]:
        created = await self._store.create_deliveries(deliveries)
        new = set(created)
        for delivery in deliveries:
            if delivery["_id"] in new:
                self._queued[delivery["_id"]] = work_item(delivery)
        return created

    async def _delivery_for(self, event: Event[Any], now: datetime) -> Document | None:
        data = event.data
        application_id = await self._application_of(event)
        recipient = await self._store.recipient(application_id) if application_id else None
        if recipient is None:
            NOTIFICATIONS.labels(event.type.removeprefix("permits."), "none", "no_recipient").inc()
            log.warning("no recipient known for event", type=event.type, event_id=event.id)
            return None
        point_code = getattr(data, "acceptance_point", None) or recipient.acceptance_point
        message = compose(event, recipient, point_details(point_code))
        return None if message is None else self._primary_delivery(message, recipient, now)

    async def _application_of(self, event: Event[Any]) -> str | None:
        application_id = getattr(event.data, "application_id", None)
        if isinstance(application_id, str):
            return application_id
        card_number = getattr(event.data, "card_number", None)
        issue_count = getattr(event.data, "issue_count", None)
        if isinstance(card_number, str) and isinstance(issue_count, int):
            return await self._store.application_for_card(card_number, issue_count)
        return None

    async def enqueue(self, message: Message, recipient: Recipient) -> str | None:
        """Queue the delivery on the primary channel; a repeat of the cause adds none."""
        delivery = self._primary_delivery(message, recipient, _to_millis(self._clock.now()))
        if delivery is None:
            return None
        created = await self._queue([delivery])
        return created[0] if created else None

    def _primary_delivery(
        self, message: Message, recipient: Recipient, now: datetime
    ) -> Document | None:
        channel = recipient.primary_channel
        if channel is None:
            NOTIFICATIONS.labels(message.type.value, "none", "no_contact").inc()
            log.warning("recipient has no phone or email", application_id=message.application_id)
            return None
        return _delivery(
            cause_event_id=message.cause_event_id,
            application_id=message.application_id,
            message_type=message.type,
            context=message.context,
            recipient=recipient,
            channel=channel,
            now=now,
        )

    # Dispatch ------------------------------------------------------------------------------

    async def dispatch_due(self) -> PassReport:
        """One pass of the timer: fire due reminders, send due deliveries, publish outcomes
        left unpublished. The scans read the small work collections (work items, outcomes
        to publish; reminders once a minute), never the delivery log. The due work items are
        claimed with one insert and their outcomes recorded with one more; one recipient's
        messages go one after the other, in the order they were queued (so the rate limit
        sees each send); different recipients' go concurrently."""
        async with self._pass_lock:
            now = self._clock.now()
            reminders: list[Document] = []
            if self._next_reminder_scan is None or now >= self._next_reminder_scan:
                reminders = await self._store.due_reminders(now, self._policy.batch)
                if len(reminders) < self._policy.batch:
                    self._next_reminder_scan = now + self._policy.reminder_scan_every
            for reminder in reminders:
                await self._fire_reminder(reminder, now)
            attempted = 0
            while True:
                due = await self._store.due_deliveries(self._clock.now(), self._policy.batch)
                tried, fell_back = await self._send(due)
                attempted += tried
                if not fell_back:
                    break
            leftovers: list[Document] = []
            if self._next_leftover_scan is None or time.monotonic() >= self._next_leftover_scan:
                leftovers = await self._store.events_to_publish(self._policy.batch)
                for doc in leftovers:
                    await self._publish_leftover(doc)
                if len(leftovers) < self._policy.batch:
                    self._next_leftover_scan = time.monotonic() + LEFTOVER_SCAN_SECONDS
            return PassReport(
                reminders=len(reminders), attempted=attempted, published=len(leftovers)
            )

    async def send_queued(self) -> PassReport:
        """Send what this process queued since the last pass, without scanning the store
        (started by the agents right after a batch)."""
        async with self._pass_lock:
            attempted = 0
            while self._queued:
                now = self._clock.now()
                due = [w for w in self._queued.values() if w["next_attempt_at"] <= now]
                if not due:
                    break
                tried, _ = await self._send(due)
                attempted += tried
            return PassReport(reminders=0, attempted=attempted, published=0)

    async def _send(self, due: list[Document]) -> tuple[int, bool]:
        """Claim, send and record a batch of due work items; returns how many were tried
        and whether a fallback delivery was queued (to be sent in the same pass)."""
        now = self._clock.now()
        for work in due:
            self._queued.pop(work["_id"], None)
        held = await self._store.claim(due, now, now + self._policy.lease)
        by_recipient: dict[str, list[Document]] = {}
        for doc in held:
            by_recipient.setdefault(doc.get("recipient_key") or doc["application_id"], []).append(
                doc
            )
        limit = asyncio.Semaphore(self._policy.concurrency)
        pass_ = _Pass()

        async def attempt_in_order(docs: list[Document]) -> None:
            async with limit:
                for index, doc in enumerate(docs):
                    limited_until = await self._attempt(doc, pass_)
                    if limited_until is not None:
                        await self._defer_rest(docs[index + 1 :], limited_until, pass_)
                        return

        await asyncio.gather(*(attempt_in_order(docs) for docs in by_recipient.values()))
        unpublished: list[str] = []
        try:
            await self._publisher.publish_all(pass_.events)
        except TRANSIENT_ERRORS as exc:
            log.warning("outcome events not published yet", error=type(exc).__name__)
            unpublished = [outcome["_id"] for outcome in pass_.outcomes if outcome["publish"]]
            self._next_leftover_scan = None
        await self._store.finish(pass_.outcomes, unpublished=unpublished)
        await self._store.save_sms_sends(pass_.sms_sends, keep=self._policy.rate_limit.window)
        return len(held), pass_.fell_back

    async def _fire_reminder(self, reminder: Document, now: datetime) -> None:
        today = now.astimezone(SHANGHAI).date()
        valid_until = date.fromisoformat(reminder["valid_until"])
        if not reminder_still_relevant(valid_until, reminder["days_before"], today):
            await self._store.finish_reminder(reminder["_id"], "skipped", now)
            return
        recipient = await self._store.recipient(reminder["application_id"])
        if recipient is None:
            NOTIFICATIONS.labels(MessageType.CARD_EXPIRING.value, "none", "no_recipient").inc()
            await self._store.finish_reminder(reminder["_id"], "no_recipient", now)
            return
        message = compose_expiry_reminder(
            cause_id=reminder["cause_id"],
            recipient=recipient,
            card_number=reminder["card_number"],
            valid_until=valid_until,
            today=today,
        )
        await self.enqueue(message, recipient)
        await self._store.finish_reminder(reminder["_id"], "queued", now)

    async def _defer_rest(self, docs: list[Document], until: datetime, pass_: _Pass) -> None:
        """The recipient's SMS window is full: their other SMS of this pass wait as well (one
        command for all; their messages by email are tried as usual)."""
        waiting = [doc for doc in docs if doc["channel"] == "sms"]
        for doc in docs:
            if doc["channel"] != "sms":
                await self._attempt(doc, pass_)
        await self._store.defer_many([doc["_id"] for doc in waiting], until, "rate_limit")
        for doc in waiting:
            NOTIFICATIONS.labels(doc["message_type"], "sms", "deferred").inc()

    async def _attempt(self, doc: Document, pass_: _Pass) -> datetime | None:
        """Try one claimed delivery once: send it, or defer, retry or fall back. Returns when
        the recipient's SMS window frees up, if the rate limit deferred it."""
        now = self._clock.now()
        key = doc["_id"]
        message_type = MessageType(doc["message_type"])
        channel: Channel = doc["channel"]
        recipient = await self._store.recipient(doc["application_id"])
        contact = recipient.contact(channel) if recipient else None
        if recipient is None or contact is None:
            await self._after_failure(doc, recipient, pass_, permanent=True, error="no contact")
            return None
        release = quiet_hours_release(message_type, channel, now, self._policy.quiet_hours)
        reason = "quiet_hours"
        if release is None and channel == "sms":
            window_start = now - self._policy.rate_limit.window
            recent = await self._store.recent_sms_sends(doc["recipient_key"], window_start, now)
            release, reason = self._policy.rate_limit.release(recent, now), "rate_limit"
        if release is not None:
            await self._store.defer(key, release, reason)
            NOTIFICATIONS.labels(message_type.value, channel, "deferred").inc()
            return release if reason == "rate_limit" else None
        try:
            rendered = self._renderer.render(
                recipient.language, message_type, channel, doc["context"]
            )
        except jinja2.TemplateError as exc:
            log.error("template failed", template=doc["template"], error=type(exc).__name__)
            await self._after_failure(doc, recipient, pass_, permanent=True, error="template error")
            return None
        started = time.perf_counter()
        try:
            receipt = await self._senders[channel].send(contact, rendered, key)
        except SendError as exc:
            SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
            await self._after_failure(
                doc, recipient, pass_, permanent=exc.permanent, error=str(exc)
            )
            return None
        SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        sent_at = self._clock.now()
        if channel == "sms":
            noted = self._store.note_sms_send(doc["recipient_key"], sent_at)
            pass_.sms_sends.append((doc["recipient_key"], noted))
        status = DELIVERED if receipt.delivered else SENT
        outcome: Document = {
            "_id": key,
            "status": status,
            "attempts": doc["attempts"],
            "sent_at": sent_at,
            "updated_at": sent_at,
            "provider_id": receipt.provider_id,
            "error": None,
            "publish": True,
        }
        pass_.record(outcome, self._outcome_event(doc, outcome))
        NOTIFICATIONS.labels(message_type.value, channel, status).inc()
        log.info("notification sent", delivery=key, type=message_type.value, channel=channel)
        return None

    async def _after_failure(
        self,
        doc: Document,
        recipient: Recipient | None,
        pass_: _Pass,
        *,
        permanent: bool,
        error: str,
    ) -> None:
        key = doc["_id"]
        channel: Channel = doc["channel"]
        message_type = doc["message_type"]
        fallback = recipient.fallback_channel(channel) if recipient else None
        if fallback is not None:
            tried = await self._store.delivery(delivery_id(doc["cause_event_id"], fallback))
            fallback = None if tried is not None else fallback
        now = self._clock.now()
        decision = after_failure(
            permanent=permanent,
            attempts=doc["attempts"],
            now=now,
            retry=self._policy.retry,
            fallback=fallback,
        )
        if isinstance(decision, RetryLater):
            await self._store.retry_later(
                key, attempts=doc["attempts"], at=decision.at, error=error
            )
            NOTIFICATIONS.labels(message_type, channel, "retry").inc()
            log.info("send failed, will retry", delivery=key, channel=channel, error=error)
            return
        fallback_to = decision.channel if isinstance(decision, FallBack) else None
        final = fallback_to is None or recipient is None
        outcome: Document = {
            "_id": key,
            "status": FAILED,
            "attempts": doc["attempts"],
            "failed_at": now,
            "updated_at": now,
            "error": error,
            "publish": final,
        }
        pass_.record(outcome, self._outcome_event(doc, outcome) if final else None)
        if fallback_to is None or recipient is None:
            NOTIFICATIONS.labels(message_type, channel, "failed").inc()
            log.warning("notification failed on every channel", delivery=key, error=error)
            return
        NOTIFICATIONS.labels(message_type, channel, "fallback").inc()
        log.info("channel failed, falling back", delivery=key, to=fallback_to)
        created = await self._queue(
            [
                _delivery(
                    cause_event_id=doc["cause_event_id"],
                    application_id=doc["application_id"],
                    message_type=MessageType(message_type),
                    context=doc["context"],
                    recipient=recipient,
                    channel=fallback_to,
                    now=_to_millis(now),
                )
            ]
        )
        pass_.fell_back = pass_.fell_back or bool(created)

    async def _publish_leftover(self, doc: Document) -> None:
        """Publish an outcome whose event did not reach Kafka when it was recorded."""
        try:
            await self._publisher.publish(self._outcome_event(doc, doc))
        except TRANSIENT_ERRORS as exc:
            log.warning("outcome event not published yet", error=type(exc).__name__)
            return
        await self._store.event_published(doc["_id"])

    def _outcome_event(self, doc: Document, outcome: Document) -> Event[Any]:
        """notification.sent / notification.failed with a deterministic id: a re-publish after
        a crash carries the same id and consumers drop it."""
        common: dict[str, Any] = {
            "application_id": doc["application_id"],
            "message_type": doc["message_type"],
            "channel": doc["channel"],
            "recipient": doc["recipient"],
            "template": doc["template"],
            "language": doc["language"],
            "attempts": max(int(outcome.get("attempts", 1)), 1),
            "cause_event_id": doc["cause_event_id"],
        }
        data: NotificationSent | NotificationFailed
        if outcome["status"] == FAILED:
            data = NotificationFailed(**common, error=str(outcome.get("error") or "failed"))
        else:
            data = NotificationSent(**common)
        event_id = derived_event_id("notification", doc["_id"], data.TYPE)
        return self._publisher.event(data, event_id=event_id)


@dataclass
class _Pass:
    """What one round of sends produced, written and published together at its end."""

    outcomes: list[Document] = field(default_factory=list)
    events: list[Event[Any]] = field(default_factory=list)
    sms_sends: list[tuple[str, datetime]] = field(default_factory=list)
    fell_back: bool = False

    def record(self, outcome: Document, event: Event[Any] | None) -> None:
        self.outcomes.append(outcome)
        if event is not None:
            self.events.append(event)


def _to_millis(moment: datetime) -> datetime:
    """A time as the store keeps it (milliseconds), so a work item in memory and the same item
    read back name the same claim."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def reminder_ids(card_number: str, issue_count: int) -> list[str]:
    """The ids of one card issue's expiry reminders."""
    return [f"{card_number}|{issue_count}|{days}" for days in REMINDER_DAYS_BEFORE]


def _reminders(card: CardIssued, now: datetime) -> list[Document]:
    return [
        {
            "_id": f"{card.card_number}|{card.issue_count}|{days_before}",
            "card_number": card.card_number,
            "issue_count": card.issue_count,
            "application_id": card.application_id,
            "days_before": days_before,
            "valid_until": card.valid_until.isoformat(),
            "due_at": reminder_due_at(card.valid_until, days_before),
            "cause_id": derived_event_id(
                "card.expiry_reminder", card.card_number, card.issue_count, days_before
            ),
            "status": "scheduled",
            "created_at": now,
        }
        for days_before in REMINDER_DAYS_BEFORE
    ]


def _delivery(
    *,
    cause_event_id: str,
    application_id: str,
    message_type: MessageType,
    context: dict[str, Any],
    recipient: Recipient,
    channel: Channel,
    now: datetime,
) -> Document:
    contact = recipient.contact(channel) or ""
    return {
        "_id": delivery_id(cause_event_id, channel),
        "cause_event_id": cause_event_id,
        "application_id": application_id,
        "message_type": message_type.value,
        "language": recipient.language,
        "channel": channel,
        "template": template_name(recipient.language, message_type, channel),
        "recipient": mask_contact(channel, contact),
        "recipient_key": contact_key(contact),
        "context": context,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def recipient_from(accepted: ApplicationAccepted) -> Recipient:
    """Contact, language and greeting of the applicant, kept per application id."""
    applicant = accepted.applicant
    language = resolve_language(applicant.language)
    return Recipient(
        application_id=accepted.application_id,
        name=greeting_name(applicant.name, applicant.name_latin, language),
        language=language,
        acceptance_point=accepted.acceptance_point,
        phone=applicant.phone or None,
        email=applicant.email or None,
        posted=accepted.collection is not None
        and accepted.collection.method is CollectionMethod.POST,
    )


class DispatchKicker:
    """Starts a dispatch pass right after new deliveries were queued, without waiting for
    the timer; a kick during a running pass schedules one more pass."""

    def __init__(self, run_pass: Callable[[], Awaitable[PassReport]]) -> None:
        self._run_pass = run_pass
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def kick(self) -> None:
        """Ask for a pass soon."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self._again = False
            try:
                await self._run_pass()
            except TRANSIENT_ERRORS as exc:
                log.warning("dispatch pass interrupted", error=type(exc).__name__)
                return
            except Exception:
                log.exception("dispatch pass failed; the timer tries again")
                return
            if not self._again:
                return
