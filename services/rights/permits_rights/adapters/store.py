"""The rights service's own database: holder issues, the feed log and the webhook delivery log.

Only operations FerretDB 1.x supports: plain finds, unordered inserts and `$set`/`$addToSet`
updates (no transactions, no dotted keys, no `$push` accumulators). Everything a card event
touches is read and written by `_id`; the work still to do (statuses not yet on the agency
topics, webhook deliveries not yet answered) lives in small collections of its own, because
the local store answers any other query by reading the whole collection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from permits_common.domain.card import HolderStatus
from permits_common.mongo import Document, bulk_write_in_chunks, ensure_index, insert_new
from permits_rights.domain.holder import CardHistory, IssueRecord, StatusChange


def _issue_id(card_number: str, issue_count: int) -> str:
    return f"{card_number}|{issue_count}"


async def create_indexes(database: AsyncDatabase[Document]) -> None:
    """Indexes for the queries that are not by `_id` (ops views, the work queues in order)."""
    await ensure_index(database["feed_log"], [("card_number", ASCENDING)])
    await ensure_index(database["confirmations"], [("agency", ASCENDING)])
    await ensure_index(database["webhook_queue"], [("agency", ASCENDING), ("seq", ASCENDING)])
    await ensure_index(database["deliveries"], [("agency", ASCENDING), ("card_number", ASCENDING)])
    await ensure_index(database["deliveries"], [("agency", ASCENDING), ("seq", ASCENDING)])


def _confirmation_id(issue_id: str, agency: str, status: str) -> str:
    """An agency's webhook accepted one status of one issue. An issue's statuses never repeat
    (active, then one final one), so issue, agency and status name the change."""
    return f"{issue_id}|{agency}|{status}"


class HolderStore:
    """One document per card issue (status, printed details), one per card listing its issues,
    the statuses not yet acknowledged by the broker, and one document per webhook confirmation.

    Confirmations are inserts of their own, not updates of the issue: FerretDB applies an update
    by reading, changing and rewriting the document, so two agencies confirming the same issue
    at once could each overwrite the other's confirmation."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._holders = database["holders"]
        self._cards = database["card_issues"]
        self._unpublished = database["unpublished_changes"]
        self._confirmations = database["confirmations"]

    async def load(self, card_numbers: Iterable[str]) -> dict[str, CardHistory]:
        """The histories of some cards (empty for cards never seen)."""
        numbers = list(set(card_numbers))
        cards = await asyncio.gather(*(self._cards.find_one({"_id": n}) for n in numbers))
        issue_ids = [
            _issue_id(card["_id"], issue_count)
            for card in cards
            if card is not None
            for issue_count in card.get("issues", [])
        ]
        docs = await asyncio.gather(*(self._holders.find_one({"_id": i}) for i in issue_ids))
        histories = {number: CardHistory(number) for number in numbers}
        for doc in docs:
            if doc is None:
                continue
            status = doc.get("status")
            histories[doc["card_number"]].issues[doc["issue_count"]] = IssueRecord(
                issue_count=doc["issue_count"],
                status=HolderStatus(status) if status else None,
                details=doc.get("details") or {},
                changed_at=doc.get("changed_at"),
            )
        return histories

    async def save(self, histories: Iterable[CardHistory], changes: Sequence[StatusChange]) -> None:
        """Write the touched issues; a new status is queued for the broker. The queue entry
        goes first, so a crash cannot lose it."""
        changed = {(c.card_number, c.issue_count): c for c in changes}
        queued = [
            ReplaceOne(
                {"_id": _issue_id(c.card_number, c.issue_count)}, _change_doc(c), upsert=True
            )
            for c in changed.values()
        ]
        issues: list[UpdateOne] = []
        holders: list[UpdateOne] = []
        for history in histories:
            issues.append(
                UpdateOne(
                    {"_id": history.card_number},
                    {"$addToSet": {"issues": {"$each": sorted(history.touched)}}},
                    upsert=True,
                )
            )
            for issue_count in sorted(history.touched):
                record = history.issues[issue_count]
                fields: Document = {
                    "card_number": history.card_number,
                    "issue_count": issue_count,
                    "details": record.details,
                }
                if (history.card_number, issue_count) in changed and record.status:
                    fields.update(status=record.status.value, changed_at=record.changed_at)
                holders.append(
                    UpdateOne(
                        {"_id": _issue_id(history.card_number, issue_count)},
                        {"$set": fields},
                        upsert=True,
                    )
                )
        for collection, operations in (
            (self._unpublished, queued),
            (self._cards, issues),
            (self._holders, holders),
        ):
            if operations:
                await bulk_write_in_chunks(collection, operations, ordered=False)

    async def unpublished(self, limit: int = 1000) -> list[StatusChange]:
        """Statuses not yet acknowledged by the broker (after a crash or an outage mid-batch)."""
        cursor = self._unpublished.find({}).limit(limit)
        return [
            StatusChange(
                doc["card_number"],
                doc["issue_count"],
                HolderStatus(doc["status"]),
                doc["changed_at"],
            )
            async for doc in cursor
        ]

    async def mark_published(self, changes: Sequence[StatusChange]) -> None:
        """The broker acknowledged these statuses on every agency topic. A newer status of the
        same issue, queued meanwhile, stays queued (the filter names the status)."""
        operations = [
            DeleteOne({"_id": _issue_id(c.card_number, c.issue_count), "status": c.status.value})
            for c in changes
        ]
        if operations:
            await bulk_write_in_chunks(self._unpublished, operations, ordered=False)

    async def mark_confirmed(
        self, card_number: str, issue_count: int, status: str, agency: str
    ) -> None:
        """An agency's webhook accepted this status of the issue."""
        issue_id = _issue_id(card_number, issue_count)
        await insert_new(
            self._confirmations,
            [
                {
                    "_id": _confirmation_id(issue_id, agency, status),
                    "issue": issue_id,
                    "agency": agency,
                    "status": status,
                }
            ],
        )

    async def counts(self, agency: str, webhook: bool) -> dict[str, tuple[int, int, int]]:
        """Per status: issues in the register, published to the topic, confirmed by the agency.
        One read each of the register, the (small) queue and the agency's confirmations."""
        register: Counter[str] = Counter()
        confirmed: Counter[str] = Counter()
        accepted = (
            {
                (doc["issue"], doc["status"])
                async for doc in self._confirmations.find({"agency": agency})
            }
            if webhook
            else set()
        )
        async for doc in self._holders.find({}, {"status": 1}):
            status = doc.get("status")
            if not status:
                continue
            register[status] += 1
            if (doc["_id"], status) in accepted:
                confirmed[status] += 1
        waiting: Counter[str] = Counter()
        async for doc in self._unpublished.find({}, {"status": 1}):
            waiting[doc["status"]] += 1
        result: dict[str, tuple[int, int, int]] = {}
        for status in HolderStatus:
            name = status.value
            sent = register[name] - waiting[name]
            result[name] = (register[name], sent, confirmed[name] if webhook else sent)
        return result


def _change_doc(change: StatusChange) -> Document:
    return {
        "card_number": change.card_number,
        "issue_count": change.issue_count,
        "status": change.status.value,
        "changed_at": change.changed_at,
    }


class FeedLog:
    """When each status change was acknowledged on the agency topics (one document per change)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._log = database["feed_log"]

    async def record(
        self, changes: Sequence[StatusChange], agencies: Sequence[str], at: datetime
    ) -> None:
        """Note the publication; repeats keep the first record."""
        await insert_new(
            self._log,
            [
                {
                    "_id": f"{c.card_number}|{c.issue_count}|{c.status.value}",
                    "card_number": c.card_number,
                    "issue_count": c.issue_count,
                    "status": c.status.value,
                    "changed_at": c.changed_at,
                    "published_at": at,
                    "agencies": list(agencies),
                }
                for c in changes
            ],
        )

    async def for_card(self, card_number: str) -> list[Document]:
        """Every published change of one card."""
        cursor = self._log.find({"card_number": card_number}).sort("published_at", ASCENDING)
        return [doc async for doc in cursor]


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A webhook delivery waiting for its (next) attempt."""

    event_id: str
    agency: str
    card_number: str
    issue_count: int
    status: str
    body: bytes
    event_time: datetime
    attempts: int
    next_attempt_at: datetime


class DeliveryLog:
    """Durable webhook queue and delivery log. `deliveries` is the log (`state` pending,
    delivered or failed); `webhook_queue` holds a copy of each pending one, so the sender
    reads only what is still to send. A restart resumes every queued delivery."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._deliveries = database["deliveries"]
        self._queue = database["webhook_queue"]

    async def enqueue(self, docs: Sequence[Document]) -> None:
        """Add deliveries (keyed by event id, so re-processing adds nothing). The log entry
        goes first, so the sender never sends what the log does not hold; re-processing after
        a crash between the two queues every delivery the log still shows as pending."""
        logged_before = list(await insert_new(self._deliveries, docs))
        entries = await asyncio.gather(
            *(self._deliveries.find_one({"_id": i}, {"state": 1}) for i in logged_before)
        )
        settled = {
            entry["_id"] for entry in entries if entry is not None and entry["state"] != "pending"
        }
        await insert_new(self._queue, [doc for doc in docs if doc["_id"] not in settled])

    async def pending(self, agency: str, limit: int) -> list[PendingDelivery]:
        """The oldest pending deliveries of one agency."""
        cursor = self._queue.find({"agency": agency}).sort("seq", ASCENDING).limit(limit)
        return [
            PendingDelivery(
                event_id=doc["_id"],
                agency=doc["agency"],
                card_number=doc["card_number"],
                issue_count=doc["issue_count"],
                status=doc["status"],
                body=doc["body"].encode(),
                event_time=doc["event_time"],
                attempts=doc["attempts"],
                next_attempt_at=doc["next_attempt_at"],
            )
            async for doc in cursor
        ]

    async def delivered(self, delivery: PendingDelivery, at: datetime) -> None:
        """The endpoint answered 2xx."""
        await self._deliveries.update_one(
            {"_id": delivery.event_id},
            {
                "$set": {
                    "state": "delivered",
                    "attempts": delivery.attempts + 1,
                    "delivered_at": at,
                    "updated_at": at,
                }
            },
        )
        await self._queue.delete_one({"_id": delivery.event_id})

    async def retry_later(
        self, delivery: PendingDelivery, error: str, at: datetime, next_attempt_at: datetime
    ) -> None:
        """A failed attempt within the retry budget."""
        fields = {
            "attempts": delivery.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "updated_at": at,
        }
        await self._deliveries.update_one({"_id": delivery.event_id}, {"$set": fields})
        await self._queue.update_one({"_id": delivery.event_id}, {"$set": fields})

    async def failed(self, delivery: PendingDelivery, error: str, at: datetime) -> None:
        """The retry budget is spent; the event went to the dead-letter topic."""
        await self._deliveries.update_one(
            {"_id": delivery.event_id},
            {
                "$set": {
                    "state": "failed",
                    "attempts": delivery.attempts + 1,
                    "last_error": error,
                    "updated_at": at,
                }
            },
        )
        await self._queue.delete_one({"_id": delivery.event_id})

    async def for_card(self, agency: str, card_number: str, limit: int) -> list[Document]:
        """Every webhook delivery of one card to one agency, oldest first."""
        cursor = (
            self._deliveries.find({"agency": agency, "card_number": card_number}, {"body": 0})
            .sort("seq", ASCENDING)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def recent(self, agency: str, limit: int) -> list[Document]:
        """The newest webhook deliveries of one agency."""
        cursor = self._deliveries.find({"agency": agency}, {"body": 0}).sort("seq", -1).limit(limit)
        return [doc async for doc in cursor]
