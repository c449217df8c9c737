"""The rights service's own database: holder issues, the feed log and the webhook delivery log.

Only operations FerretDB 1.x supports: plain finds with `$in`, counts, unordered inserts and
`$set`/`$addToSet` updates (no transactions, no dotted keys, no `$push` accumulators).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from permits_common.domain.card import HolderStatus
from permits_common.mongo import Document, bulk_write_in_chunks, ensure_index
from permits_rights.domain.holder import CardHistory, IssueRecord, StatusChange


def _issue_id(card_number: str, issue_count: int) -> str:
    return f"{card_number}|{issue_count}"


async def _insert_new(collection: Any, docs: Sequence[Document]) -> None:
    """Insert documents; ones already there (same _id) are left as they are."""
    if not docs:
        return
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        if any(err.get("code") != 11000 for err in exc.details.get("writeErrors", [])):
            raise


async def create_indexes(database: AsyncDatabase[Document]) -> None:
    """Indexes for every query below (lookups by card number, pending deliveries in order)."""
    await ensure_index(database["holders"], [("card_number", ASCENDING)])
    await ensure_index(database["holders"], [("published", ASCENDING)])
    await ensure_index(database["feed_log"], [("card_number", ASCENDING)])
    await ensure_index(
        database["deliveries"],
        [("agency", ASCENDING), ("state", ASCENDING), ("seq", ASCENDING)],
    )
    await ensure_index(database["deliveries"], [("agency", ASCENDING), ("card_number", ASCENDING)])


class HolderStore:
    """One document per card issue: status, printed details, and whether the current status has
    been published (`published`) and confirmed by webhook (`confirmed`: agency keys)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._holders = database["holders"]

    async def load(self, card_numbers: Iterable[str]) -> dict[str, CardHistory]:
        """The histories of some cards (empty for cards never seen)."""
        numbers = list(set(card_numbers))
        histories = {number: CardHistory(number) for number in numbers}
        async for doc in self._holders.find({"card_number": {"$in": numbers}}):
            status = doc.get("status")
            histories[doc["card_number"]].issues[doc["issue_count"]] = IssueRecord(
                issue_count=doc["issue_count"],
                status=HolderStatus(status) if status else None,
                details=doc.get("details") or {},
                changed_at=doc.get("changed_at"),
            )
        return histories

    async def save(self, histories: Iterable[CardHistory], changes: Sequence[StatusChange]) -> None:
        """Write the touched issues; a new status resets `published` and `confirmed`."""
        changed = {(c.card_number, c.issue_count) for c in changes}
        operations = []
        for history in histories:
            for issue_count in sorted(history.touched):
                record = history.issues[issue_count]
                fields: Document = {
                    "card_number": history.card_number,
                    "issue_count": issue_count,
                    "details": record.details,
                }
                if (history.card_number, issue_count) in changed and record.status:
                    fields.update(
                        status=record.status.value,
                        changed_at=record.changed_at,
                        published=False,
                        confirmed=[],
                    )
                operations.append(
                    UpdateOne(
                        {"_id": _issue_id(history.card_number, issue_count)},
                        {"$set": fields},
                        upsert=True,
                    )
                )
        if operations:
            await bulk_write_in_chunks(self._holders, operations, ordered=True)

    async def unpublished(self, limit: int = 1000) -> list[StatusChange]:
        """Current statuses not yet acknowledged by the broker (after a crash mid-batch)."""
        cursor = self._holders.find({"published": False}).limit(limit)
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
        """The broker acknowledged these statuses on every agency topic."""
        operations = [
            UpdateOne(
                {"_id": _issue_id(c.card_number, c.issue_count), "status": c.status.value},
                {"$set": {"published": True}},
            )
            for c in changes
        ]
        if operations:
            await bulk_write_in_chunks(self._holders, operations, ordered=False)

    async def mark_confirmed(
        self, card_number: str, issue_count: int, status: str, agency: str
    ) -> None:
        """An agency's webhook accepted the issue's current status."""
        await self._holders.update_one(
            {"_id": _issue_id(card_number, issue_count), "status": status},
            {"$addToSet": {"confirmed": agency}},
        )

    async def counts(self, agency: str, webhook: bool) -> dict[str, tuple[int, int, int]]:
        """Per status: issues in the register, published to the topic, confirmed by the agency."""
        result: dict[str, tuple[int, int, int]] = {}
        for status in HolderStatus:
            register = await self._holders.count_documents({"status": status.value})
            sent = await self._holders.count_documents({"status": status.value, "published": True})
            confirmed = (
                await self._holders.count_documents(
                    {"status": status.value, "published": True, "confirmed": agency}
                )
                if webhook
                else sent
            )
            result[status.value] = (register, sent, confirmed)
        return result


class FeedLog:
    """When each status change was acknowledged on the agency topics (one document per change)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._log = database["feed_log"]

    async def record(
        self, changes: Sequence[StatusChange], agencies: Sequence[str], at: datetime
    ) -> None:
        """Note the publication; repeats keep the first record."""
        await _insert_new(
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
    """Durable webhook queue and delivery log in one collection: `state` is pending, delivered
    or failed; a restart resumes every pending delivery."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._deliveries = database["deliveries"]

    async def enqueue(self, docs: Sequence[Document]) -> None:
        """Add deliveries (keyed by event id, so re-processing adds nothing)."""
        await _insert_new(self._deliveries, docs)

    async def pending(self, agency: str, limit: int) -> list[PendingDelivery]:
        """The oldest pending deliveries of one agency."""
        cursor = (
            self._deliveries.find({"agency": agency, "state": "pending"})
            .sort("seq", ASCENDING)
            .limit(limit)
        )
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

    async def retry_later(
        self, delivery: PendingDelivery, error: str, at: datetime, next_attempt_at: datetime
    ) -> None:
        """A failed attempt within the retry budget."""
        await self._deliveries.update_one(
            {"_id": delivery.event_id},
            {
                "$set": {
                    "attempts": delivery.attempts + 1,
                    "last_error": error,
                    "next_attempt_at": next_attempt_at,
                    "updated_at": at,
                }
            },
        )

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
