"""The rights service's own database: the webhook delivery log.

Only operations FerretDB 1.x supports: plain finds, unordered inserts, and updates by `_id`
(no transactions, no dotted keys, no `$push` accumulators). What is written per batch is
appended with one `insert_many` (deliveries, delivery outcomes); the one update in place is a
failed webhook attempt's next try. The holder register and its feed log are not here: they live
in memory, rebuilt from the register's changelog topic (see `register_changelog`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from permits_common.mongo import Document, ensure_index, insert_new


async def create_indexes(database: AsyncDatabase[Document]) -> None:
    """Indexes for the queries that are not by `_id` (ops views, the work queue in order)."""
    await ensure_index(database["webhook_queue"], [("agency", ASCENDING), ("seq", ASCENDING)])
    await ensure_index(database["deliveries"], [("agency", ASCENDING), ("card_number", ASCENDING)])
    await ensure_index(database["deliveries"], [("agency", ASCENDING), ("seq", ASCENDING)])
    await ensure_index(
        database["delivery_outcomes"], [("agency", ASCENDING), ("outcome", ASCENDING)]
    )
    await ensure_index(
        database["delivery_outcomes"], [("agency", ASCENDING), ("card_number", ASCENDING)]
    )


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


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a webhook delivery ended: `delivered` (2xx) or `failed` (dead-lettered)."""

    delivery: PendingDelivery
    outcome: str
    at: datetime
    error: str | None = None

    def document(self) -> Document:
        """The appended record; `_id` is the event id, so a repeat adds nothing."""
        d = self.delivery
        return {
            "_id": d.event_id,
            "agency": d.agency,
            "card_number": d.card_number,
            "issue_count": d.issue_count,
            "status": d.status,
            "outcome": self.outcome,
            "attempts": d.attempts + 1,
            "last_error": self.error,
            "at": self.at,
        }


class DeliveryLog:
    """Durable webhook queue and delivery log, written by appending. `deliveries` logs every
    delivery once when queued; `webhook_queue` holds a copy of each pending one, so the sender
    reads only what is still to send; `delivery_outcomes` records how each one ended (a
    `delivered` outcome is the agency's confirmation). A restart resumes every queued delivery."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._deliveries = database["deliveries"]
        self._queue = database["webhook_queue"]
        self._outcomes = database["delivery_outcomes"]

    async def enqueue(self, docs: Sequence[Document]) -> None:
        """Add deliveries (keyed by event id, so re-processing adds nothing). The log entry
        goes first, so the sender never sends what the log does not hold; re-processing after
        a crash between the two queues every logged delivery that has no outcome yet."""
        logged_before = list(await insert_new(self._deliveries, docs))
        settled = await self._settled(logged_before)
        await insert_new(self._queue, [doc for doc in docs if doc["_id"] not in settled])

    async def _settled(self, event_ids: Sequence[str]) -> set[str]:
        """The ids among these that have an outcome (by `_id`, concurrently: few, and only
        after a crash)."""
        found = await asyncio.gather(
            *(self._outcomes.find_one({"_id": i}, {"_id": 1}) for i in event_ids)
        )
        return {doc["_id"] for doc in found if doc is not None}

    async def drop_settled(self, agency: str) -> int:
        """Remove queue entries whose outcome was recorded just before a crash (outcomes are
        written before the queue entries are removed): run once per agency at start-up."""
        queued = [doc["_id"] async for doc in self._queue.find({"agency": agency}, {"_id": 1})]
        settled = await self._settled(queued)
        if settled:
            await self._queue.delete_many({"_id": {"$in": sorted(settled)}})
        return len(settled)

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

    async def settle(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record how some deliveries ended (one insert), then take them off the queue (one
        delete; `$in` is not pushed down by FerretDB, but the queue holds only what is pending)."""
        if not outcomes:
            return
        await insert_new(self._outcomes, [o.document() for o in outcomes])
        ids = [o.delivery.event_id for o in outcomes]
        await self._queue.delete_many({"_id": {"$in": ids}})

    async def retry_later(
        self, delivery: PendingDelivery, error: str, at: datetime, next_attempt_at: datetime
    ) -> None:
        """A failed attempt within the retry budget: the queue entry's one update in place."""
        fields = {
            "attempts": delivery.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "updated_at": at,
        }
        await self._queue.update_one({"_id": delivery.event_id}, {"$set": fields})

    async def confirmed(self, agency: str) -> list[Document]:
        """Every delivery the agency's webhook accepted."""
        cursor = self._outcomes.find(
            {"agency": agency, "outcome": "delivered"},
            {"card_number": 1, "issue_count": 1, "status": 1},
        )
        return [doc async for doc in cursor]

    async def for_card(self, agency: str, card_number: str, limit: int) -> list[Document]:
        """Every webhook delivery of one card to one agency, oldest first, with its progress."""
        query = {"agency": agency, "card_number": card_number}
        cursor = self._deliveries.find(query, {"body": 0}).sort("seq", ASCENDING).limit(limit)
        docs = [doc async for doc in cursor]
        outcomes = {doc["_id"]: doc async for doc in self._outcomes.find(query)}
        queued = {doc["_id"]: doc async for doc in self._queue.find(query, {"body": 0})}
        return [_progress(doc, outcomes.get(doc["_id"]), queued.get(doc["_id"])) for doc in docs]

    async def recent(self, agency: str, limit: int) -> list[Document]:
        """The newest webhook deliveries of one agency, with their progress."""
        cursor = self._deliveries.find({"agency": agency}, {"body": 0}).sort("seq", -1).limit(limit)
        docs = [doc async for doc in cursor]
        ids = [doc["_id"] for doc in docs]
        outcomes, queued = await asyncio.gather(
            asyncio.gather(*(self._outcomes.find_one({"_id": i}) for i in ids)),
            asyncio.gather(*(self._queue.find_one({"_id": i}, {"body": 0}) for i in ids)),
        )
        return [
            _progress(doc, outcome, queue)
            for doc, outcome, queue in zip(docs, outcomes, queued, strict=True)
        ]


def _progress(delivery: Document, outcome: Document | None, queued: Document | None) -> Document:
    """A logged delivery as the ops view shows it: `state` pending, delivered or failed, with
    the attempts so far and the last error."""
    if outcome is not None:
        delivered_at = outcome["at"] if outcome["outcome"] == "delivered" else None
        return {
            **delivery,
            "state": outcome["outcome"],
            "attempts": outcome["attempts"],
            "last_error": outcome.get("last_error"),
            "delivered_at": delivered_at,
            "updated_at": outcome["at"],
        }
    progress = queued or {}
    return {
        **delivery,
        "state": "pending",
        "attempts": progress.get("attempts", delivery["attempts"]),
        "last_error": progress.get("last_error"),
        "updated_at": progress.get("updated_at"),
    }
