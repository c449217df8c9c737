"""Everything intake keeps in the document store, behind methods named after what they mean.

Works on FerretDB 1.x as on MongoDB: no transactions, so every state change that must be
atomic (accepting an application together with its outbox event, releasing a person's open
application lock, collecting a card) is a single-document write with a conditional filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from permits_common.domain.calendar import YearArrangement, official_arrangement
from permits_common.domain.card import ApplicationStatus, HolderStatus, SlaState
from permits_common.mongo import Document, bulk_write_in_chunks, ensure_index
from permits_common.reference import AcceptancePoint
from permits_intake.domain.cards import CardView


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a request with an idempotency key was answered, kept to answer a retry the same."""

    body_hash: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxDocument:
    """An application with events not yet on Kafka, and the version to mark them published."""

    application_id: str
    seq: int
    events: list[str]


def outbox_entry(event_id: str, value: bytes) -> Document:
    """One serialized CloudEvent waiting in its application's document."""
    return {"id": event_id, "value": value.decode()}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


class IntakeStore:
    """The intake database: applications (with outbox), idempotency answers, views, reference."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self.applications: AsyncCollection[Document] = database["applications"]
        self.idempotency: AsyncCollection[Document] = database["idempotency"]
        self.cards: AsyncCollection[Document] = database["cards"]
        self.calendar_years: AsyncCollection[Document] = database["calendar_years"]
        self.points: AsyncCollection[Document] = database["acceptance_points"]

    async def ensure_indexes(self) -> None:
        """Unique keys carry the guarantees: one answer per idempotency key, one open
        application per person (the field is removed when the application closes)."""
        await ensure_index(
            self.applications, [("idempotency_key", 1)], unique=True, name="idempotency_key"
        )
        await ensure_index(
            self.applications, [("open_person", 1)], unique=True, sparse=True, name="open_person"
        )
        await ensure_index(self.applications, [("published", 1)], name="published")
        await ensure_index(self.cards, [("holder", 1)], name="holder")

    async def upsert_points(self, points: Iterable[AcceptancePoint]) -> None:
        """Seed the reference data, by code, so reports and tools can read it from the store."""
        requests = [
            UpdateOne(
                {"_id": point.code},
                {
                    "$set": {
                        "order": order,
                        "name": point.name,
                        "district": point.district,
                        "address": point.address,
                        "phone": point.phone,
                        "issuing_authority": point.issuing_authority,
                    }
                },
                upsert=True,
            )
            for order, point in enumerate(points)
        ]
        if requests:
            await bulk_write_in_chunks(self.points, requests, ordered=False)

    # Calendar years loaded by operators.

    async def calendar_arrangements(self) -> list[YearArrangement]:
        """Every official arrangement an operator loaded."""
        found = []
        async for doc in self.calendar_years.find({}):
            found.append(
                official_arrangement(
                    int(doc["_id"]),
                    (date.fromisoformat(day) for day in doc.get("holidays", [])),
                    (date.fromisoformat(day) for day in doc.get("workdays", [])),
                )
            )
        return found

    async def save_calendar_year(self, arrangement: YearArrangement, at: datetime) -> None:
        """Store (or replace) one year's arrangement."""
        await self.calendar_years.replace_one(
            {"_id": arrangement.year},
            {
                "holidays": sorted(day.isoformat() for day in arrangement.holidays),
                "workdays": sorted(day.isoformat() for day in arrangement.workdays),
                "loaded_at": at,
            },
            upsert=True,
        )

    # Idempotency.

    async def stored_answer(self, idempotency_key: str) -> StoredAnswer | None:
        """The answer already given for this key: an accepted application or a refusal."""
        doc = await self.applications.find_one(
            {"idempotency_key": idempotency_key}, {"body_hash": 1, "response": 1}
        )
        if doc is not None:
            return StoredAnswer(doc["body_hash"], 201, doc["response"])
        doc = await self.idempotency.find_one({"_id": idempotency_key})
        if doc is not None:
            return StoredAnswer(doc["body_hash"], int(doc["status"]), doc["body"])
        return None

    async def record_refusal(
        self, idempotency_key: str, answer: StoredAnswer, at: datetime
    ) -> None:
        """Keep a refusal so a retry with the same key gets the same answer; the first wins."""
        try:
            await self.idempotency.insert_one(
                {
                    "_id": idempotency_key,
                    "body_hash": answer.body_hash,
                    "status": answer.status,
                    "body": answer.body,
                    "created_at": at,
                }
            )
        except DuplicateKeyError:
            return

    # Applications.

    async def insert_application(self, doc: Document) -> bool:
        """Store a new application with its outbox; False when its idempotency key or the
        person's open-application lock is taken."""
        try:
            await self.applications.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def application(self, application_id: str) -> Document | None:
        """The application's view document, without its outbox."""
        return await self.applications.find_one(
            {"_id": application_id}, {"outbox": 0, "response": 0}
        )

    async def advance_status(
        self,
        application_id: str,
        new: ApplicationStatus,
        allowed_from: Sequence[ApplicationStatus],
        at: datetime,
        *,
        fields: Mapping[str, Any] | None = None,
        release_person: bool = False,
        outbox: Document | None = None,
    ) -> bool:
        """Move the status forward (and only forward) in one conditional write."""
        update: dict[str, Any] = {
            "$set": {"status": new.value, **(fields or {})},
            "$push": {"history": {"status": new.value, "at": at}},
        }
        if release_person:
            update["$unset"] = {"open_person": ""}
        if outbox is not None:
            update["$push"]["outbox"] = outbox
            update["$set"]["published"] = False
            update["$inc"] = {"outbox_seq": 1}
        result = await self.applications.update_one(
            {"_id": application_id, "status": {"$in": [status.value for status in allowed_from]}},
            update,
        )
        return result.modified_count == 1

    async def set_card_if_unknown(self, application_id: str, number: str, issue_count: int) -> None:
        """Remember the card number issuance assigned, unless the full card is known already."""
        await self.applications.update_one(
            {"_id": application_id, "card": None},
            {
                "$set": {
                    "card": {
                        "number": number,
                        "issue_count": issue_count,
                        "valid_from": None,
                        "valid_until": None,
                        "issuing_authority": None,
                    }
                }
            },
        )

    async def set_card(
        self,
        application_id: str,
        *,
        number: str,
        issue_count: int,
        valid_from: date,
        valid_until: date,
        issuing_authority: str,
    ) -> None:
        """The application's card as issued."""
        await self.applications.update_one(
            {"_id": application_id},
            {
                "$set": {
                    "card": {
                        "number": number,
                        "issue_count": issue_count,
                        "valid_from": valid_from.isoformat(),
                        "valid_until": valid_until.isoformat(),
                        "issuing_authority": issuing_authority,
                    }
                }
            },
        )

    async def set_due_date(self, application_id: str, due_date: date, provisional: bool) -> None:
        """The deadline as issuance scheduled or recomputed it."""
        await self.applications.update_one(
            {"_id": application_id},
            {"$set": {"due_date": due_date.isoformat(), "due_date_provisional": provisional}},
        )

    async def set_sla(
        self, application_id: str, new: SlaState, allowed_from: Sequence[SlaState]
    ) -> None:
        """Move the deadline standing towards a more definite answer."""
        await self.applications.update_one(
            {"_id": application_id, "sla": {"$in": [state.value for state in allowed_from]}},
            {"$set": {"sla": new.value}},
        )

    # Outbox.

    async def unpublished(self, limit: int) -> list[OutboxDocument]:
        """Applications whose outbox still holds events for Kafka."""
        cursor = self.applications.find({"published": False}, {"outbox": 1, "outbox_seq": 1}).limit(
            limit
        )
        return [
            OutboxDocument(
                doc["_id"], int(doc.get("outbox_seq", 0)), [e["value"] for e in doc["outbox"]]
            )
            async for doc in cursor
        ]

    async def mark_published(self, documents: Sequence[OutboxDocument]) -> None:
        """Empty each outbox unless an event was added meanwhile (it goes out next round)."""
        if not documents:
            return
        await bulk_write_in_chunks(
            self.applications,
            [
                UpdateOne(
                    {"_id": doc.application_id, "outbox_seq": doc.seq},
                    {"$set": {"published": True, "outbox": []}},
                )
                for doc in documents
            ],
            ordered=False,
        )

    # Cards.

    async def card(self, number: str) -> CardView | None:
        """The latest issue of a card number."""
        doc = await self.cards.find_one({"_id": number})
        return _card_view(doc) if doc is not None else None

    async def active_card_of(self, holder: str) -> CardView | None:
        """A card in force held by this person (travel-permit base number), if any."""
        doc = await self.cards.find_one({"holder": holder, "status": HolderStatus.ACTIVE.value})
        return _card_view(doc) if doc is not None else None

    async def save_card(self, card: CardView) -> None:
        """Replace the view of a card number."""
        await self.cards.replace_one(
            {"_id": card.number},
            {
                "issue_count": card.issue_count,
                "status": card.status.value,
                "holder": card.holder,
                "valid_from": _iso(card.valid_from),
                "valid_until": _iso(card.valid_until),
                "issuing_authority": card.issuing_authority,
                "application_id": card.application_id,
            },
            upsert=True,
        )

    async def set_card_status(
        self, number: str, issue_count: int, expected: HolderStatus, new: HolderStatus
    ) -> CardView | None:
        """Change the holder status now (report lost, revoke) if nothing changed meanwhile."""
        doc = await self.cards.find_one_and_update(
            {"_id": number, "issue_count": issue_count, "status": expected.value},
            {"$set": {"status": new.value}},
            return_document=ReturnDocument.AFTER,
        )
        return _card_view(doc) if doc is not None else None


def _card_view(doc: Document) -> CardView:
    return CardView(
        number=str(doc["_id"]),
        issue_count=int(doc["issue_count"]),
        status=HolderStatus(doc["status"]),
        holder=str(doc["holder"]),
        valid_from=_day(doc.get("valid_from")),
        valid_until=_day(doc.get("valid_until")),
        issuing_authority=doc.get("issuing_authority"),
        application_id=doc.get("application_id"),
    )
