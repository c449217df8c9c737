"""The notify service's own documents: recipients, card map, reminders and the delivery log.

Every write that must happen once uses a unique `_id` (duplicate inserts are ignored), and a
send is claimed with one find-and-modify of its work item, so two workers never send the same
delivery. Everything a busy moment touches is read and written by `_id`.
Only features FerretDB 1.x has are used (no transactions, no TTL indexes, no dotted keys).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from permits_common.mongo import Document, ensure_index, insert_once
from permits_notify.domain.messages import Recipient, resolve_language

PENDING = "pending"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
REMINDER_SCHEDULED = "scheduled"


class NotifyStore:
    """Typed access to the collections this service owns."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self._recipients: AsyncCollection[Document] = database["recipients"]
        self._cards: AsyncCollection[Document] = database["cards"]
        self._reminders: AsyncCollection[Document] = database["reminders"]
        self._deliveries: AsyncCollection[Document] = database["deliveries"]
        self._pending: AsyncCollection[Document] = database["pending_deliveries"]
        self._outcomes: AsyncCollection[Document] = database["outcomes_to_publish"]
        self._sms_sends: AsyncCollection[Document] = database["sms_sends"]

    async def ensure_indexes(self) -> None:
        """The indexes the timer's scans and the ops listing rely on."""
        await ensure_index(
            self._pending, [("next_attempt_at", ASCENDING), ("created_at", ASCENDING)]
        )
        await ensure_index(
            self._deliveries, [("application_id", ASCENDING), ("created_at", ASCENDING)]
        )
        await ensure_index(self._reminders, [("status", ASCENDING), ("due_at", ASCENDING)])
        await ensure_index(
            self._reminders, [("card_number", ASCENDING), ("issue_count", ASCENDING)]
        )

    # Recipients and the card map -------------------------------------------------------

    async def save_recipient(self, recipient: Recipient) -> None:
        """Remember how to reach the applicant of one application."""
        await self._recipients.replace_one(
            {"_id": recipient.application_id},
            {
                "_id": recipient.application_id,
                "name": recipient.name,
                "language": recipient.language,
                "acceptance_point": recipient.acceptance_point,
                "phone": recipient.phone,
                "email": recipient.email,
                "posted": recipient.posted,
            },
            upsert=True,
        )

    async def recipient(self, application_id: str) -> Recipient | None:
        """The applicant of an application, if its acceptance was seen."""
        doc = await self._recipients.find_one({"_id": application_id})
        if doc is None:
            return None
        return Recipient(
            application_id=doc["_id"],
            name=doc["name"],
            language=resolve_language(doc.get("language")),
            acceptance_point=doc["acceptance_point"],
            phone=doc.get("phone"),
            email=doc.get("email"),
            posted=bool(doc.get("posted", False)),
        )

    async def map_card(self, card_number: str, issue_count: int, application_id: str) -> None:
        """Point a card number at the application of its latest issue (older issues lose).

        A card's events arrive on one partition and are handled in order by one worker, so
        this read-then-write by `_id` has no concurrent writer for the same card."""
        current = await self._cards.find_one({"_id": card_number}, {"issue_count": 1})
        if current is not None and int(current["issue_count"]) > issue_count:
            return
        await self._cards.replace_one(
            {"_id": card_number},
            {"issue_count": issue_count, "application_id": application_id},
            upsert=True,
        )

    async def application_for_card(self, card_number: str) -> str | None:
        """The application whose applicant holds this card."""
        doc = await self._cards.find_one({"_id": card_number})
        return None if doc is None else str(doc["application_id"])

    # Reminders ---------------------------------------------------------------------------

    async def schedule_reminder(self, reminder: Document) -> None:
        """Insert a reminder once; a redelivered card.issued changes nothing."""
        await insert_once(self._reminders, reminder)

    async def cancel_reminders(
        self, card_number: str, issue_count: int, reason: str, now: datetime
    ) -> int:
        """Cancel the scheduled reminders of one card issue; returns how many."""
        result = await self._reminders.update_many(
            {
                "card_number": card_number,
                "issue_count": issue_count,
                "status": REMINDER_SCHEDULED,
            },
            {"$set": {"status": "cancelled", "cancel_reason": reason, "updated_at": now}},
        )
        return result.modified_count

    async def due_reminders(self, now: datetime, limit: int) -> list[Document]:
        """Scheduled reminders whose time has come (index on status, due_at)."""
        cursor = (
            self._reminders.find({"status": REMINDER_SCHEDULED, "due_at": {"$lte": now}})
            .sort("due_at", ASCENDING)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def finish_reminder(self, reminder_id: str, status: str, now: datetime) -> None:
        """Record that a reminder was queued for sending, or skipped."""
        await self._reminders.update_one(
            {"_id": reminder_id, "status": REMINDER_SCHEDULED},
            {"$set": {"status": status, "updated_at": now}},
        )

    async def reminders_for_card(self, card_number: str) -> list[Document]:
        """Every reminder of a card (tests and ops)."""
        return [doc async for doc in self._reminders.find({"card_number": card_number})]

    # Deliveries ----------------------------------------------------------------------------
    #
    # `deliveries` is the log: one document per message and channel, only ever written by
    # `_id`. The work still to do lives in two small collections, `pending_deliveries` (what
    # the timer scans and claims) and `outcomes_to_publish` (sent or failed, event not on
    # Kafka yet), so the queries that are not by `_id` read the in-flight messages only, not
    # every message ever sent (FerretDB reads a whole collection for those).

    async def create_delivery(self, delivery: Document) -> bool:
        """Write a delivery as pending before anything is sent; False if it already exists.

        The log entry goes first and the work item second, so the timer never claims a work
        item whose delivery is not written yet. After a crash between the two, the redelivered
        cause event queues the still-pending delivery again."""
        created = await insert_once(self._deliveries, delivery)
        if not created:
            existing = await self.delivery(delivery["_id"])
            if existing is None or existing.get("status") != PENDING:
                return False
        await insert_once(
            self._pending,
            {
                "_id": delivery["_id"],
                "next_attempt_at": delivery["next_attempt_at"],
                "created_at": delivery["created_at"],
                "application_id": delivery["application_id"],
                "recipient_key": delivery["recipient_key"],
            },
        )
        return created

    async def delivery(self, delivery_id: str) -> Document | None:
        """One delivery record."""
        return await self._deliveries.find_one({"_id": delivery_id})

    async def due_deliveries(self, now: datetime, limit: int) -> list[Document]:
        """Pending deliveries whose next attempt is due (new, deferred, retrying, or orphaned
        by a crash once their claim lease ran out)."""
        cursor = (
            self._pending.find(
                {"next_attempt_at": {"$lte": now}},
                {"_id": 1, "application_id": 1, "recipient_key": 1},
            )
            .sort([("next_attempt_at", ASCENDING), ("created_at", ASCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def claim(
        self, delivery_id: str, now: datetime, lease_until: datetime
    ) -> Document | None:
        """Take a due delivery for one attempt: counts the attempt and hides it until the lease
        ends. Whoever loses the race gets None."""
        taken = await self._pending.find_one_and_update(
            {"_id": delivery_id, "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": lease_until}},
        )
        if taken is None:
            return None
        doc = await self._deliveries.find_one_and_update(
            {"_id": delivery_id},
            {
                "$set": {"next_attempt_at": lease_until, "last_attempt_at": now, "updated_at": now},
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None or doc.get("status") != PENDING:
            await self._pending.delete_one({"_id": delivery_id})
            return None
        return doc

    async def defer(self, delivery_id: str, until: datetime, reason: str, now: datetime) -> None:
        """Put a claimed delivery back without counting the attempt (quiet hours, rate limit)."""
        await self._pending.update_one({"_id": delivery_id}, {"$set": {"next_attempt_at": until}})
        await self._deliveries.update_one(
            {"_id": delivery_id},
            {
                "$set": {"next_attempt_at": until, "deferred_reason": reason, "updated_at": now},
                "$inc": {"attempts": -1},
            },
        )

    async def retry_later(self, delivery_id: str, at: datetime, error: str, now: datetime) -> None:
        """A temporary failure: try the same channel again at `at`."""
        await self._pending.update_one({"_id": delivery_id}, {"$set": {"next_attempt_at": at}})
        await self._deliveries.update_one(
            {"_id": delivery_id},
            {"$set": {"next_attempt_at": at, "error": error, "updated_at": now}},
        )

    async def mark_sent(
        self, delivery_id: str, *, delivered: bool, provider_id: str, now: datetime
    ) -> None:
        """The provider took the message; its notification.sent event is still to publish."""
        await self._finish(
            delivery_id,
            {
                "status": DELIVERED if delivered else SENT,
                "sent_at": now,
                "updated_at": now,
                "provider_id": provider_id,
                "error": None,
                "event_pending": True,
            },
        )

    async def mark_failed(
        self, delivery_id: str, *, error: str, final: bool, now: datetime
    ) -> None:
        """This channel failed for good; `final` when no other channel is left (publish it)."""
        await self._finish(
            delivery_id,
            {
                "status": FAILED,
                "failed_at": now,
                "updated_at": now,
                "error": error,
                "event_pending": final,
            },
        )

    async def _finish(self, delivery_id: str, fields: Document) -> None:
        """Record the outcome, queue its event if it has one, then drop the work item (a crash
        in between leaves a work item whose claim finds the delivery finished)."""
        await self._deliveries.update_one({"_id": delivery_id}, {"$set": fields})
        if fields["event_pending"]:
            await insert_once(self._outcomes, {"_id": delivery_id})
        await self._pending.delete_one({"_id": delivery_id})

    async def events_to_publish(self, limit: int) -> list[Document]:
        """Outcomes whose event is not on Kafka yet (a crash between record and publish)."""
        waiting = [doc["_id"] async for doc in self._outcomes.find({}, {"_id": 1}).limit(limit)]
        docs = await asyncio.gather(*(self.delivery(delivery_id) for delivery_id in waiting))
        outstanding = []
        for delivery_id, doc in zip(waiting, docs, strict=True):
            if doc is not None and doc.get("event_pending"):
                outstanding.append(doc)
            else:
                await self._outcomes.delete_one({"_id": delivery_id})
        return outstanding

    async def event_published(self, delivery_id: str) -> None:
        """The outcome event is on Kafka."""
        await self._deliveries.update_one({"_id": delivery_id}, {"$set": {"event_pending": False}})
        await self._outcomes.delete_one({"_id": delivery_id})

    async def recent_sms_sends(self, recipient_key: str, since: datetime) -> list[datetime]:
        """When this recipient was last sent SMS, for the per-recipient rate limit."""
        doc = await self._sms_sends.find_one({"_id": recipient_key})
        return [sent for sent in (doc or {}).get("sent", []) if sent > since]

    async def record_sms_send(self, recipient_key: str, at: datetime, keep_since: datetime) -> None:
        """Remember an SMS to this recipient, forgetting those older than the rate-limit window.

        One recipient's messages are sent one after the other (see `Notifier.dispatch_due`), so
        this read-then-write has no concurrent writer for the same recipient."""
        recent = await self.recent_sms_sends(recipient_key, keep_since)
        await self._sms_sends.replace_one(
            {"_id": recipient_key}, {"sent": [*recent, at]}, upsert=True
        )

    async def deliveries_for(self, application_id: str, limit: int = 500) -> list[Document]:
        """The delivery log of one application, oldest first."""
        cursor = (
            self._deliveries.find({"application_id": application_id})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        return [doc async for doc in cursor]


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
