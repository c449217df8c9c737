"""The notify service's own documents: recipients, card issues, reminders and the delivery log.

Written for a store whose cheap commands are an unordered `insert_many` and a look-up by `_id`
(FerretDB): what a batch of events or a dispatch pass produces is appended with one
`insert_many` per collection, "first one wins" is an insert on a unique `_id`, and updates in
place are left to the exceptions (a deferred or retried send, a cancelled reminder).

A delivery is three documents with the same `_id`: the log entry (what was queued, written once),
its work item in `pending_deliveries` (the working copy the timer scans and sends from, while
the message is not sent) and its outcome in `delivery_outcomes` (sent, delivered or failed,
written once, before the work item is removed). An attempt is claimed by inserting
`<delivery>|<attempt>|<due time>` into `delivery_claims`, so two workers never send the same
attempt; a claim whose lease ran out (its worker died) is taken over.

Only features FerretDB 1.x has are used (no transactions, no TTL indexes, no dotted keys).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from permits_common.mongo import Document, ensure_index, insert_new
from permits_notify.domain.messages import Recipient, resolve_language

PENDING = "pending"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
REMINDER_SCHEDULED = "scheduled"
RECIPIENTS_CACHED = 100_000
"""Recipients kept in memory (a few hundred bytes each): an application's messages are handled
by the worker that saw its acceptance, so the look-ups of a busy day are answered from here."""

WORK_FIELDS = (
    "_id",
    "cause_event_id",
    "application_id",
    "message_type",
    "language",
    "channel",
    "template",
    "recipient",
    "recipient_key",
    "context",
    "attempts",
    "created_at",
    "next_attempt_at",
)


class NotifyStore:
    """Typed access to the collections this service owns."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self._recipients: AsyncCollection[Document] = database["recipients"]
        self._card_issues: AsyncCollection[Document] = database["card_issues"]
        self._reminders: AsyncCollection[Document] = database["reminders"]
        self._deliveries: AsyncCollection[Document] = database["deliveries"]
        self._pending: AsyncCollection[Document] = database["pending_deliveries"]
        self._claims: AsyncCollection[Document] = database["delivery_claims"]
        self._outcomes: AsyncCollection[Document] = database["delivery_outcomes"]
        self._unpublished: AsyncCollection[Document] = database["outcomes_to_publish"]
        self._sms_log: AsyncCollection[Document] = database["sms_send_log"]
        self._recipient_cache: OrderedDict[str, Recipient] = OrderedDict()
        self._sms_recent: dict[str, list[datetime]] = {}
        self._sms_loaded = False
        self._sms_loading = asyncio.Lock()
        self._sms_bucket = ""

    async def ensure_indexes(self) -> None:
        """The indexes the timer's scans and the ops listing rely on."""
        await ensure_index(
            self._pending, [("next_attempt_at", ASCENDING), ("created_at", ASCENDING)]
        )
        await ensure_index(
            self._deliveries, [("application_id", ASCENDING), ("created_at", ASCENDING)]
        )
        await ensure_index(self._reminders, [("status", ASCENDING), ("due_at", ASCENDING)])
        await ensure_index(self._sms_log, [("bucket", ASCENDING)])

    # Recipients and card issues -----------------------------------------------------------

    def _remember(self, recipient: Recipient) -> None:
        self._recipient_cache[recipient.application_id] = recipient
        self._recipient_cache.move_to_end(recipient.application_id)
        while len(self._recipient_cache) > RECIPIENTS_CACHED:
            self._recipient_cache.popitem(last=False)

    async def save_recipients(self, recipients: Sequence[Recipient]) -> None:
        """Remember how to reach the applicants of a batch (one insert; repeats change nothing:
        an application's applicant is fixed at acceptance)."""
        for recipient in recipients:
            self._remember(recipient)
        await insert_new(self._recipients, [_recipient_doc(r) for r in recipients])

    async def recipient(self, application_id: str) -> Recipient | None:
        """The applicant of an application, if its acceptance was seen."""
        cached = self._recipient_cache.get(application_id)
        if cached is not None:
            return cached
        doc = await self._recipients.find_one({"_id": application_id})
        if doc is None:
            return None
        recipient = Recipient(
            application_id=doc["_id"],
            name=doc["name"],
            language=resolve_language(doc.get("language")),
            acceptance_point=doc["acceptance_point"],
            phone=doc.get("phone"),
            email=doc.get("email"),
            posted=bool(doc.get("posted", False)),
        )
        self._remember(recipient)
        return recipient

    async def map_cards(self, issues: Sequence[tuple[str, int, str]]) -> None:
        """Record which application each (card number, issue) belongs to, appended at once."""
        await insert_new(
            self._card_issues,
            [{"_id": f"{card}|{issue}", "application_id": app} for card, issue, app in issues],
        )

    async def application_for_card(self, card_number: str, issue_count: int) -> str | None:
        """The application whose applicant holds this issue of the card."""
        doc = await self._card_issues.find_one({"_id": f"{card_number}|{issue_count}"})
        return None if doc is None else str(doc["application_id"])

    # Reminders ---------------------------------------------------------------------------

    async def schedule_reminders(self, reminders: Sequence[Document]) -> None:
        """Insert reminders once; a redelivered card.issued changes nothing."""
        await insert_new(self._reminders, reminders)

    async def cancel_reminders(
        self, reminder_ids: Iterable[str], reason: str, now: datetime
    ) -> int:
        """Cancel those of the given reminders still scheduled; returns how many. Each is
        read and written by `_id` (a card ending is rare; a filter on status would make the
        local store read every reminder ever scheduled)."""
        ids = list(reminder_ids)
        docs = await asyncio.gather(*(self._reminders.find_one({"_id": i}) for i in ids))
        cancelled = 0
        for doc in docs:
            if doc is not None and doc.get("status") == REMINDER_SCHEDULED:
                await self._reminders.update_one(
                    {"_id": doc["_id"]},
                    {"$set": {"status": "cancelled", "cancel_reason": reason, "updated_at": now}},
                )
                cancelled += 1
        return cancelled

    async def due_reminders(self, now: datetime, limit: int) -> list[Document]:
        """Scheduled reminders whose time has come (index on status, due_at)."""
        cursor = (
            self._reminders.find({"status": REMINDER_SCHEDULED, "due_at": {"$lte": now}})
            .sort("due_at", ASCENDING)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def finish_reminder(self, reminder_id: str, status: str, now: datetime) -> None:
        """Record that a reminder was queued for sending, or skipped (the due scan found it
        scheduled just now, and one worker runs the scan at a time)."""
        await self._reminders.update_one(
            {"_id": reminder_id}, {"$set": {"status": status, "updated_at": now}}
        )

    async def reminders_for_card(self, card_number: str) -> list[Document]:
        """Every reminder of a card (tests and ops)."""
        return [doc async for doc in self._reminders.find({"card_number": card_number})]

    # Deliveries ----------------------------------------------------------------------------

    async def create_deliveries(self, deliveries: Sequence[Document]) -> list[str]:
        """Queue deliveries (log entries first, then their work items, one insert each);
        returns the ids that are new.

        A delivery already in the log (its cause event redelivered) gets its work item again
        only if it has no outcome: after a crash between the two inserts it is still to send;
        otherwise it was sent, or is being sent (its work item is still there)."""
        if not deliveries:
            return []
        existing = await insert_new(self._deliveries, deliveries)
        finished = await asyncio.gather(
            *(self._outcomes.find_one({"_id": key}, {"_id": 1}) for key in existing)
        )
        done = {doc["_id"] for doc in finished if doc is not None}
        await insert_new(
            self._pending,
            [work_item(delivery) for delivery in deliveries if delivery["_id"] not in done],
        )
        return [d["_id"] for d in deliveries if d["_id"] not in existing]

    async def due_deliveries(self, now: datetime, limit: int) -> list[Document]:
        """Work items whose next attempt is due (new, deferred, retrying, or left by a worker
        that died while its claim was held), oldest first."""
        cursor = (
            self._pending.find({"next_attempt_at": {"$lte": now}})
            .sort([("next_attempt_at", ASCENDING), ("created_at", ASCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def claim(
        self, work: Sequence[Document], now: datetime, lease_until: datetime
    ) -> list[Document]:
        """Claim the next attempt of each work item with one insert; returns those this call
        holds, with `attempts` counting the claimed one. A claim whose lease ran out is taken
        over (delete, then insert: only one taker wins) if its work item is still unchanged and
        its delivery has no outcome yet (a worker that died after recording it)."""
        if not work:
            return []
        keys = {doc["_id"]: _claim_key(doc) for doc in work}
        refused = await insert_new(
            self._claims,
            [{"_id": keys[doc["_id"]], "lease_until": lease_until} for doc in work],
        )
        held: list[Document] = []
        for doc in work:
            key = keys[doc["_id"]]
            if key in refused and not await self._take_over(doc, key, now, lease_until):
                continue
            held.append({**doc, "attempts": int(doc.get("attempts", 0)) + 1})
        return held

    async def _take_over(
        self, doc: Document, key: str, now: datetime, lease_until: datetime
    ) -> bool:
        claim = await self._claims.find_one({"_id": key})
        if claim is not None and claim["lease_until"] > now:
            return False
        current = await self._pending.find_one({"_id": doc["_id"]})
        if current is None or _claim_key(current) != key:
            return False
        if await self.outcome(doc["_id"]) is not None:
            await self.drop_work(doc["_id"])
            return False
        if claim is not None:
            await self._claims.delete_one({"_id": key, "lease_until": claim["lease_until"]})
        try:
            await self._claims.insert_one({"_id": key, "lease_until": lease_until})
        except DuplicateKeyError:
            return False
        return True

    async def defer(self, delivery_id: str, until: datetime, reason: str) -> None:
        """Put a claimed delivery back without counting the attempt (quiet hours, rate limit)."""
        await self._pending.update_one(
            {"_id": delivery_id},
            {"$set": {"next_attempt_at": until, "deferred_reason": reason}},
        )

    async def defer_many(self, delivery_ids: Sequence[str], until: datetime, reason: str) -> None:
        """Put several claimed deliveries back at once (one recipient's SMS over the rate limit;
        the filter reads the small work collection)."""
        if delivery_ids:
            await self._pending.update_many(
                {"_id": {"$in": list(delivery_ids)}},
                {"$set": {"next_attempt_at": until, "deferred_reason": reason}},
            )

    async def retry_later(
        self, delivery_id: str, *, attempts: int, at: datetime, error: str
    ) -> None:
        """A temporary failure: try the same channel again at `at`."""
        await self._pending.update_one(
            {"_id": delivery_id},
            {"$set": {"next_attempt_at": at, "attempts": attempts, "error": error}},
        )

    async def finish(self, outcomes: Sequence[Document], *, unpublished: Sequence[str]) -> None:
        """Record a pass's outcomes (one insert), queue the events that did not reach Kafka,
        then drop the work items (a crash in between leaves work items whose deliveries have
        an outcome: the next claim of those finds it and only removes them)."""
        if not outcomes:
            return
        await insert_new(self._outcomes, outcomes)
        await insert_new(self._unpublished, [{"_id": key} for key in unpublished])
        await self._pending.delete_many({"_id": {"$in": [o["_id"] for o in outcomes]}})

    async def outcome(self, delivery_id: str) -> Document | None:
        """The recorded outcome of a delivery, if it has one."""
        return await self._outcomes.find_one({"_id": delivery_id})

    async def drop_work(self, delivery_id: str) -> None:
        """Remove a work item whose delivery already has its outcome."""
        await self._pending.delete_one({"_id": delivery_id})

    async def delivery(self, delivery_id: str) -> Document | None:
        """One delivery as it stands: the log entry with its work item or its outcome."""
        log = await self._deliveries.find_one({"_id": delivery_id})
        return None if log is None else await self._current(log)

    async def _current(self, log: Document) -> Document:
        outcome, work = await asyncio.gather(
            self._outcomes.find_one({"_id": log["_id"]}),
            self._pending.find_one({"_id": log["_id"]}),
        )
        current = {**log, "status": PENDING}
        if outcome is not None:
            current.update(outcome)
            current["next_attempt_at"] = None
        elif work is not None:
            current.update(work)
        return current

    async def events_to_publish(self, limit: int) -> list[Document]:
        """Outcomes whose event is not on Kafka yet (Kafka was down when they were recorded)."""
        waiting = [doc["_id"] async for doc in self._unpublished.find({}, {"_id": 1}).limit(limit)]
        docs = await asyncio.gather(*(self.delivery(key) for key in waiting))
        return [doc for doc in docs if doc is not None]

    async def event_published(self, delivery_id: str) -> None:
        """The outcome event is on Kafka."""
        await self._unpublished.delete_one({"_id": delivery_id})

    async def recent_sms_sends(
        self, recipient_key: str, since: datetime, now: datetime
    ) -> list[datetime]:
        """When this recipient was sent SMS after `since`, for the per-recipient rate limit:
        in memory, loaded once per process from the send log of the hours since `since`."""
        if not self._sms_loaded:
            async with self._sms_loading:
                if not self._sms_loaded:
                    await self._load_sms_sends(since, now)
        recent = [sent for sent in self._sms_recent.get(recipient_key, ()) if sent > since]
        if recent:
            self._sms_recent[recipient_key] = recent
        else:
            self._sms_recent.pop(recipient_key, None)
        return recent

    async def _load_sms_sends(self, since: datetime, now: datetime) -> None:
        """Every SMS sent after `since` by any worker, from the log's hour buckets since then
        (one look-up by bucket each: an equality the store answers without decoding the rest)."""
        hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while hour <= now:
            async for doc in self._sms_log.find({"bucket": sms_bucket(hour)}):
                for send in doc["sends"]:
                    if send["sent_at"] > since:
                        self._remember_sms(send["recipient_key"], send["sent_at"])
            hour += timedelta(hours=1)
        self._sms_loaded = True

    def _remember_sms(self, recipient_key: str, at: datetime) -> None:
        self._sms_recent.setdefault(recipient_key, []).append(at)

    def note_sms_send(self, recipient_key: str, at: datetime) -> datetime:
        """An SMS went to this recipient: counted at once (the log was loaded by the rate
        check before it), written by `save_sms_sends`. Returns the moment as the log keeps it
        (milliseconds, as the store does)."""
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        self._remember_sms(recipient_key, at)
        return at

    async def save_sms_sends(
        self, sends: Sequence[tuple[str, datetime]], *, keep: timedelta
    ) -> None:
        """Append a pass's SMS sends to the log as one document (one insert), filed under the
        hour of its last send; once an hour, forget what is older than `keep` (the rate
        limit's window) in memory and drop the log's buckets older than that."""
        if not sends:
            return
        last = max(at for _, at in sends)
        bucket = sms_bucket(last)
        await insert_new(
            self._sms_log,
            [
                {
                    "_id": uuid.uuid4().hex,
                    "bucket": bucket,
                    "sends": [{"recipient_key": k, "sent_at": at} for k, at in sends],
                }
            ],
        )
        if bucket != self._sms_bucket:
            self._sms_bucket = bucket
            cutoff = last - keep
            self._sms_recent = {
                key: kept
                for key, sent in self._sms_recent.items()
                if (kept := [at for at in sent if at > cutoff])
            }
            older = sms_bucket(cutoff - timedelta(hours=1))
            await self._sms_log.delete_many({"bucket": {"$lte": older}})

    async def deliveries_for(self, application_id: str, limit: int = 500) -> list[Document]:
        """The delivery log of one application as it stands, oldest first (ops and tests)."""
        cursor = (
            self._deliveries.find({"application_id": application_id})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        return [await self._current(doc) async for doc in cursor]


def sms_bucket(moment: datetime) -> str:
    """The hour (UTC) under which the SMS send log files a send."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H}"


def work_item(delivery: Document) -> Document:
    """The work item of a delivery: what a send needs, and when it is due."""
    return {name: delivery[name] for name in WORK_FIELDS}


def _claim_key(work: Document) -> str:
    """One claim per attempt and due time: a deferred or rescheduled item is claimed anew.
    The time is written as the store keeps it (UTC, milliseconds), so every worker names it
    alike whether it read the item back or queued it itself."""
    due = work["next_attempt_at"].astimezone(UTC).isoformat(timespec="milliseconds")
    return f"{work['_id']}|{int(work.get('attempts', 0)) + 1}|{due}"


def _recipient_doc(recipient: Recipient) -> Document:
    return {
        "_id": recipient.application_id,
        "name": recipient.name,
        "language": recipient.language,
        "acceptance_point": recipient.acceptance_point,
        "phone": recipient.phone,
        "email": recipient.email,
        "posted": recipient.posted,
    }


def public_delivery(doc: Document) -> dict[str, Any]:
    """A delivery as the ops API shows it: masked recipient, no message content."""
    fields = (
        "application_id",
        "message_type",
        "channel",
        "template",
        "language",
        "recipient",
        "status",
        "attempts",
        "cause_event_id",
        "created_at",
        "updated_at",
        "sent_at",
        "failed_at",
        "next_attempt_at",
        "deferred_reason",
        "error",
    )
    shown: dict[str, Any] = {"id": doc["_id"]}
    shown.update({name: doc.get(name) for name in fields})
    if doc.get("status") != PENDING:
        shown["next_attempt_at"] = None
    return shown
