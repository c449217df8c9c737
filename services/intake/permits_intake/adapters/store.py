"""Everything intake keeps in the document store, behind methods named after what they mean.

Works on FerretDB 1.x as on MongoDB: no transactions, so every state change that must be
atomic (accepting an application together with its outbox event, releasing a person's open
application lock, collecting a card) is a single-document write with a conditional filter.
Everything on the busy path (the status view consumer, the outbox, duplicate checks) reads
and writes by `_id` alone: the local store answers any other filter by reading the whole
collection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import UpdateResult

from permits_common.domain.calendar import YearArrangement, official_arrangement
from permits_common.domain.card import ApplicationStatus, HolderStatus, SlaState
from permits_common.mongo import (
    Document,
    KeyedLocks,
    bulk_write_in_chunks,
    ensure_index,
    insert_once,
)
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
    """An application's events not yet on Kafka, exactly as stored (to remove them once sent)."""

    application_id: str
    entries: list[Document]

    @property
    def events(self) -> list[str]:
        """The serialized CloudEvents, oldest first."""
        return [entry["value"] for entry in self.entries]


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
        self.holder_cards: AsyncCollection[Document] = database["holder_cards"]
        self._application_locks = KeyedLocks()
        self.calendar_years: AsyncCollection[Document] = database["calendar_years"]
        self.points: AsyncCollection[Document] = database["acceptance_points"]

    async def _update_application(
        self, application_id: str, condition: Document, update: Document
    ) -> UpdateResult:
        """Update one application, one writer at a time in this process. FerretDB applies an
        update by reading, changing and rewriting the document, so the outbox relay removing
        sent events and the status views recording a step at the same moment could each undo
        the other's change; MongoDB needs no lock but loses nothing by it."""
        async with self._application_locks.hold(application_id):
            return await self.applications.update_one({"_id": application_id, **condition}, update)

    async def ensure_indexes(self) -> None:
        """Unique keys carry the guarantees: one answer per idempotency key, one open
        application per person (the field is removed when the application closes)."""
        await ensure_index(
            self.applications, [("idempotency_key", 1)], unique=True, name="idempotency_key"
        )
        await ensure_index(
            self.applications, [("open_person", 1)], unique=True, sparse=True, name="open_person"
        )

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

    async def calendar_year_announced(self, year: int, event_id: str) -> bool:
        """Whether this very arrangement of the year is stored and its event was published."""
        doc = await self.calendar_years.find_one({"_id": year}, {"announced": 1})
        return doc is not None and doc.get("announced") == event_id

    async def mark_calendar_year_announced(self, year: int, event_id: str) -> None:
        """The year's `calendar.loaded` is on Kafka: loading the same again publishes nothing."""
        await self.calendar_years.update_one({"_id": year}, {"$set": {"announced": event_id}})

    # Idempotency.

    async def stored_answer(self, idempotency_key: str, application_id: str) -> StoredAnswer | None:
        """The answer already given for this key: the application it created (whose id
        derives from the key) or a refusal."""
        doc = await self.applications.find_one(
            {"_id": application_id}, {"idempotency_key": 1, "body_hash": 1, "response": 1}
        )
        if doc is not None and doc.get("idempotency_key") == idempotency_key:
            return StoredAnswer(doc["body_hash"], 201, doc["response"])
        doc = await self.idempotency.find_one({"_id": idempotency_key})
        if doc is not None:
            return StoredAnswer(doc["body_hash"], int(doc["status"]), doc["body"])
        return None

    async def record_refusal(
        self, idempotency_key: str, answer: StoredAnswer, at: datetime
    ) -> None:
        """Keep a refusal so a retry with the same key gets the same answer; the first wins."""
        await insert_once(
            self.idempotency,
            {
                "_id": idempotency_key,
                "body_hash": answer.body_hash,
                "status": answer.status,
                "body": answer.body,
                "created_at": at,
            },
        )

    # Applications.

    async def insert_application(self, doc: Document) -> bool:
        """Store a new application with its outbox; False when its idempotency key or the
        person's open-application lock is taken."""
        return await insert_once(self.applications, doc)

    async def application(self, application_id: str) -> Document | None:
        """The application's view document, without its outbox. Until `card.issued` gives the
        whole card, `card` is the number issuance assigned."""
        doc = await self.applications.find_one(
            {"_id": application_id}, {"outbox": 0, "response": 0}
        )
        if doc is not None:
            assigned = doc.pop("assigned_card", None)
            if doc.get("card") is None:
                doc["card"] = assigned
        return doc

    async def progress_of(self, application_id: str) -> tuple[ApplicationStatus, SlaState] | None:
        """Status and deadline standing of an application (None if this intake never took it)."""
        doc = await self.applications.find_one({"_id": application_id}, {"status": 1, "sla": 1})
        if doc is None:
            return None
        return ApplicationStatus(doc["status"]), SlaState(doc.get("sla") or SlaState.ON_TRACK)

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
        """Move the status forward (and only forward) in one conditional write: for requests,
        which may race each other (two clerks collecting the same card)."""
        result = await self._update_application(
            application_id,
            {"status": {"$in": [status.value for status in allowed_from]}},
            _status_update(new, at, fields, release_person, outbox),
        )
        return result.modified_count == 1

    async def record_status(
        self,
        application_id: str,
        new: ApplicationStatus,
        at: datetime,
        *,
        fields: Mapping[str, Any] | None = None,
        release_person: bool = False,
    ) -> None:
        """Write a status the caller has checked is a step forward, by `_id` alone.

        For the status view consumer: an application's events reach it in order on one
        partition, and the only other status writer (collecting, from `ready`) never races a
        step it takes, so a check-then-write is safe, and it costs no collection scan on the
        local store (a conditional filter there reads every application)."""
        await self._update_application(
            application_id, {}, _status_update(new, at, fields, release_person, None)
        )

    async def set_assigned_card(self, application_id: str, number: str, issue_count: int) -> None:
        """Remember the card number issuance assigned; shown until the issued card is known."""
        await self._update_application(
            application_id,
            {},
            {"$set": {"assigned_card": _card_document(number, issue_count)}},
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
        await self._update_application(
            application_id,
            {},
            {
                "$set": {
                    "card": _card_document(
                        number, issue_count, valid_from, valid_until, issuing_authority
                    )
                }
            },
        )

    async def set_due_date(
        self,
        application_id: str,
        due_date: date,
        provisional: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The deadline as issuance scheduled or recomputed it (`extra`: the calendar behind
        it, or the standing an extension gives back)."""
        await self._update_application(
            application_id,
            {},
            {
                "$set": {
                    "due_date": due_date.isoformat(),
                    "due_date_provisional": provisional,
                    **(extra or {}),
                }
            },
        )

    async def record_extension(
        self,
        application_id: str,
        *,
        granted_so_far: int,
        before_ready: Sequence[ApplicationStatus],
        fields: Mapping[str, Any],
        grant: Document,
        outbox: Document,
    ) -> bool:
        """Record an extension with its outbox event in one conditional write: only while the
        card is not ready and no other extension was recorded since the caller read the
        application (an absent total counts as 0)."""
        result = await self._update_application(
            application_id,
            {
                "status": {"$in": [status.value for status in before_ready]},
                "extension_days": granted_so_far if granted_so_far else {"$in": [0, None]},
            },
            {"$set": dict(fields), "$push": {"extension_grants": grant, "outbox": outbox}},
        )
        return result.modified_count == 1

    async def set_sla(self, application_id: str, standing: SlaState) -> None:
        """Record the deadline standing the caller has checked is more definite (the view
        consumer, in partition order, is its only writer)."""
        await self._update_application(application_id, {}, {"$set": {"sla": standing.value}})

    # Outbox.

    async def outboxes(self, application_ids: Iterable[str]) -> list[OutboxDocument]:
        """The waiting events of the given applications, looked up by primary key."""
        docs = await asyncio.gather(
            *(
                self.applications.find_one({"_id": application_id}, {"outbox": 1})
                for application_id in dict.fromkeys(application_ids)
            )
        )
        return [
            OutboxDocument(doc["_id"], list(doc["outbox"]))
            for doc in docs
            if doc is not None and doc.get("outbox")
        ]

    async def unpublished(self, limit: int) -> list[OutboxDocument]:
        """Applications whose outbox still holds events (a sweep: it reads the collection)."""
        cursor = self.applications.find({"outbox.0": {"$exists": True}}, {"outbox": 1}).limit(limit)
        return [OutboxDocument(doc["_id"], list(doc["outbox"])) async for doc in cursor]

    async def mark_published(self, documents: Sequence[OutboxDocument]) -> None:
        """Remove exactly the entries that went out: an event added meanwhile stays for the
        next round, and every write is by primary key."""
        await asyncio.gather(
            *(
                self._update_application(
                    doc.application_id, {}, {"$pullAll": {"outbox": doc.entries}}
                )
                for doc in documents
            )
        )

    # Cards.

    async def card(self, number: str) -> CardView | None:
        """The latest issue of a card number."""
        doc = await self.cards.find_one({"_id": number})
        return _card_view(doc) if doc is not None else None

    async def active_card_of(self, holder: str) -> CardView | None:
        """A card in force held by this person (travel-permit base number), if any: the
        holder's few card numbers, then each card by `_id`."""
        held = await self.holder_cards.find_one({"_id": holder})
        for number in (held or {}).get("cards", []):
            card = await self.card(number)
            if card is not None and card.holder == holder and card.status is HolderStatus.ACTIVE:
                return card
        return None

    async def save_card(self, card: CardView) -> None:
        """Replace the view of a card number, and list it under its holder."""
        if card.holder:
            await self.holder_cards.update_one(
                {"_id": card.holder}, {"$addToSet": {"cards": card.number}}, upsert=True
            )
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


def _status_update(
    new: ApplicationStatus,
    at: datetime,
    fields: Mapping[str, Any] | None,
    release_person: bool,
    outbox: Document | None,
) -> Document:
    update: dict[str, Any] = {
        "$set": {"status": new.value, **(fields or {})},
        "$push": {"history": {"status": new.value, "at": at}},
    }
    if release_person:
        update["$unset"] = {"open_person": ""}
    if outbox is not None:
        update["$push"]["outbox"] = outbox
    return update


def _card_document(
    number: str,
    issue_count: int,
    valid_from: date | None = None,
    valid_until: date | None = None,
    issuing_authority: str | None = None,
) -> Document:
    return {
        "number": number,
        "issue_count": issue_count,
        "valid_from": _iso(valid_from),
        "valid_until": _iso(valid_until),
        "issuing_authority": issuing_authority,
    }
