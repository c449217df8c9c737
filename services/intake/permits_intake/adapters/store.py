"""Everything intake keeps in the document store, behind methods named after what they mean.

Works on FerretDB 1.x as on MongoDB: no transactions, so what must be atomic (an accepted
application with its idempotency answer, the person's open-application lock and its outbox
event; the answer to an idempotency key) is one inserted document, and "first one wins" is an
insert on a unique key; the submissions that arrive together are inserted with one unordered
`insert_many`, each still told whether its own document went in. Application views are not
updated in place: what events add is appended as steps (one `insert_many` per consumed batch)
and folded when read. The few writes in place are releasing a person and card views (the outbox
relay keeps a ledger of its batch tokens instead of marking documents). Everything else is read
by `_id`, or by one top-level field with an index (`application_steps.application_id`), which
FerretDB on PostgreSQL answers from that index.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from permits_common.domain.calendar import YearArrangement, official_arrangement
from permits_common.domain.card import ApplicationStatus, HolderStatus, SlaState
from permits_common.mongo import (
    Document,
    GroupedInserts,
    bulk_write_in_chunks,
    ensure_index,
    insert_new,
)
from permits_common.reference import AcceptancePoint
from permits_intake.adapters.card_holders import KnownHolders
from permits_intake.domain.cards import CardView
from permits_intake.domain.progress import (
    CardStep,
    DueStep,
    ExtensionStep,
    SlaStep,
    StatusStep,
    Step,
    fold,
)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a request with an idempotency key was answered, kept to answer a retry the same."""

    body_hash: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxDocument:
    """An application's events not yet known to be on Kafka, and the relay batch token it was
    stored with (None for documents written before tokens existed)."""

    application_id: str
    entries: list[Document]
    batch: str | None = None

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


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """An accepted application as stored, with the steps events have added to it."""

    stored: Document
    steps: tuple[Step, ...]

    def with_steps(self, steps: Sequence[Step]) -> ApplicationRecord:
        """The same application with steps just recorded (to answer without reading again)."""
        return ApplicationRecord(self.stored, (*self.steps, *steps))

    def shown(self) -> Document:
        """The application as its views show it: the stored fields, with the status,
        history, deadline, rejection and card its steps make."""
        stored = self.stored
        progress = fold(
            stored["created_at"],
            date.fromisoformat(stored["due_date"]),
            bool(stored["due_date_provisional"]),
            self.steps,
        )
        return {
            **stored,
            "status": progress.status.value,
            "history": progress.history,
            "sla": progress.sla.value,
            "due_date": progress.due_date.isoformat(),
            "due_date_provisional": progress.due_date_provisional,
            "ready_on": _iso(progress.ready_on),
            "rejection": progress.rejection,
            "card": progress.card,
            "dispatch": progress.dispatch,
            "calendar": progress.calendar or stored.get("calendar"),
            "extension": progress.extension,
            "extension_days": progress.extension["working_days"] if progress.extension else 0,
        }


VIEW_PROJECTION: Document = {"outbox": 0, "response": 0, "idempotency_key": 0}
"""What an application view reads of the stored document: not the outbox, the stored answer
or the key."""


_PUBLISHED = {"outbox": "", "outbox_pending": "", "outbox_batch": ""}
"""What a document flagged by an earlier version loses once its events are on Kafka."""


class IntakeStore:
    """The intake database: applications (with outbox) and refusal answers, the steps of the
    application views, card views, reference data."""

    def __init__(
        self, database: AsyncDatabase[Document], known_holders: KnownHolders | None = None
    ) -> None:
        self.database = database
        self.known_holders = known_holders or KnownHolders()
        """Who was ever listed with a card, to spare the look-up of people never listed (kept
        complete by a `CardHoldersFollower`; without one it never is, and every look-up is
        made)."""
        self.applications: AsyncCollection[Document] = database["applications"]
        self.steps: AsyncCollection[Document] = database["application_steps"]
        self.cards: AsyncCollection[Document] = database["cards"]
        self.holder_cards: AsyncCollection[Document] = database["holder_cards"]
        self.calendar_years: AsyncCollection[Document] = database["calendar_years"]
        self.points: AsyncCollection[Document] = database["acceptance_points"]
        self.outbox_batches: AsyncCollection[Document] = database["outbox_batches"]
        """The outbox relay's ledger: one document per batch token whose events may not all
        be on Kafka yet (see `OutboxRelay`)."""
        self._new_applications = GroupedInserts(self.applications)
        """Accepted applications and kept refusals: one insert per group of submissions that
        arrive together (see `GroupedInserts`)."""

    async def ensure_indexes(self) -> None:
        """One open application per person (the field is removed when the application
        closes); an application's steps found by its id; the relay's batch token, and the flag of
        documents stored by earlier versions. An idempotency key needs no index of its own: the
        application's `_id` derives from it."""
        await ensure_index(
            self.applications, [("open_person", 1)], unique=True, sparse=True, name="open_person"
        )
        await ensure_index(
            self.applications, [("outbox_pending", 1)], sparse=True, name="outbox_pending"
        )
        await ensure_index(
            self.applications, [("outbox_batch", 1)], sparse=True, name="outbox_batch"
        )
        await ensure_index(self.steps, [("application_id", 1)], name="application_id")

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

    # Answers to idempotency keys: an accepted application, or a refusal kept under the id
    # the key would have given the application, so that one insert decides which came first.

    async def stored_answer(self, application_id: str) -> StoredAnswer | None:
        """The answer already given for the key this application id derives from."""
        doc = await self.applications.find_one(
            {"_id": application_id}, {"body_hash": 1, "response": 1, "refusal": 1}
        )
        if doc is None:
            return None
        refusal = doc.get("refusal")
        if refusal is not None:
            return StoredAnswer(doc["body_hash"], int(refusal["status"]), refusal["body"])
        return StoredAnswer(doc["body_hash"], 201, doc["response"])

    async def record_refusal(
        self, application_id: str, idempotency_key: str, answer: StoredAnswer, at: datetime
    ) -> bool:
        """Keep a refusal so a retry with the same key gets the same answer; False when the
        key already has an answer (that one stands)."""
        return await self._new_applications.insert_once(
            {
                "_id": application_id,
                "idempotency_key": idempotency_key,
                "body_hash": answer.body_hash,
                "refusal": {"status": answer.status, "body": answer.body},
                "created_at": at,
            },
        )

    # Applications.

    async def insert_application(self, doc: Document, outbox_batch: str) -> bool:
        """Store a new application with its outbox, tagged with the relay's batch token (see
        `OutboxRelay`); False when its id (its idempotency key) or the person's
        open-application lock is taken."""
        return await self._new_applications.insert_once({**doc, "outbox_batch": outbox_batch})

    async def application(self, application_id: str) -> ApplicationRecord | None:
        """The accepted application and its steps (None for an unknown id, and for the id of
        a refused submission): two reads, one by `_id`, one by the indexed application id."""
        doc = await self.applications.find_one({"_id": application_id}, VIEW_PROJECTION)
        if doc is None or "refusal" in doc:
            return None
        return await self.with_steps(doc)

    async def with_steps(self, doc: Document) -> ApplicationRecord:
        """An application document read already (with `VIEW_PROJECTION`), with its steps."""
        steps = [_step(step) async for step in self.steps.find({"application_id": doc["_id"]})]
        return ApplicationRecord(doc, tuple(steps))

    async def append_steps(self, steps: Sequence[tuple[str, Step]]) -> None:
        """Record what events added to application views, in one command; a step recorded
        before (a redelivered event) stays as it was."""
        await insert_new(
            self.steps,
            [_step_document(application_id, step) for application_id, step in steps],
        )

    async def release_person(self, application_id: str) -> None:
        """The application is closed: its person may open another one. The one write in place
        of an application document (the relay leaves them alone), except the clearing of a
        document flagged by an earlier version: FerretDB applies an update by reading and
        rewriting the whole document, so when those two meet one can be undone. Neither loss
        is kept: an outbox that comes back is sent again by the sweep (the same event id,
        dropped by every consumer) and cleared again; a person left held by a closed
        application is released by their next submission (`holder_of_person`)."""
        await self.applications.update_one({"_id": application_id}, {"$unset": {"open_person": ""}})

    async def holder_of_person(self, person: str) -> ApplicationRecord | None:
        """The application holding the person's open-application lock, with its steps (an
        indexed equality on `open_person`)."""
        doc = await self.applications.find_one({"open_person": person}, VIEW_PROJECTION)
        return await self.with_steps(doc) if doc is not None else None

    # Outbox.

    async def open_outbox_batch(self, token: str, at: datetime) -> None:
        """Record a batch token in the ledger before any application is stored with it."""
        await self.outbox_batches.insert_one({"_id": token, "opened_at": at})

    async def settle_outbox_batch(self, token: str) -> None:
        """Every event stored under the token is on Kafka: drop it from the ledger."""
        await self.outbox_batches.delete_one({"_id": token})

    async def open_outbox_batches(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every token of the ledger, with when it was recorded."""
        async for doc in self.outbox_batches.find({}):
            yield str(doc["_id"]), doc["opened_at"]

    async def outbox_of_batch(self, token: str) -> AsyncIterator[OutboxDocument]:
        """The outboxes of the applications stored under a token (an indexed equality)."""
        async for doc in self.applications.find({"outbox_batch": token}, {"outbox": 1}):
            if doc.get("outbox"):
                yield OutboxDocument(doc["_id"], list(doc["outbox"]), token)

    async def mark_published(self, application_ids: Iterable[str]) -> None:
        """The flagged applications' events are on Kafka: drop them from the documents and
        from the sweep, by primary key (for documents stored without a batch token)."""
        await asyncio.gather(
            *(
                self.applications.update_one({"_id": application_id}, {"$unset": _PUBLISHED})
                for application_id in application_ids
            )
        )

    async def mark_batch_published(self, batch: str, application_ids: Sequence[str]) -> None:
        """These flagged applications, written with this outbox batch token, have their events
        on Kafka: drop them from the documents in one command. The store finds the token's
        documents by its index and keeps only the ones named, so another document of the same
        token stays flagged for the sweep."""
        await self.applications.update_many(
            {"outbox_batch": batch, "_id": {"$in": list(application_ids)}}, {"$unset": _PUBLISHED}
        )

    async def unpublished(self, created_before: datetime) -> AsyncIterator[OutboxDocument]:
        """Applications flagged by an earlier version, written before the given time, whose
        event was never seen on Kafka (one query on the flag, which only they carry)."""
        async for doc in self.applications.find(
            {"outbox_pending": True}, {"outbox": 1, "created_at": 1, "outbox_batch": 1}
        ):
            if doc.get("outbox") and doc["created_at"] < created_before:
                yield OutboxDocument(doc["_id"], list(doc["outbox"]), doc.get("outbox_batch"))

    # Cards.

    async def card(self, number: str) -> CardView | None:
        """The latest issue of a card number."""
        doc = await self.cards.find_one({"_id": number})
        return _card_view(doc) if doc is not None else None

    async def active_card_of(self, holder: str) -> CardView | None:
        """A card in force held by this person (travel-permit base number), if any: the
        holder's few card numbers, then each card by `_id`. No command at all for someone
        `known_holders` knows was never listed (most first applicants)."""
        if not self.known_holders.may_hold_a_card(holder):
            return None
        held = await self.holder_cards.find_one({"_id": holder})
        for number in (held or {}).get("cards", []):
            card = await self.card(number)
            if card is not None and card.holder == holder and card.status is HolderStatus.ACTIVE:
                return card
        return None

    async def holder_ids(self) -> AsyncIterator[str]:
        """Everyone listed with a card (one scan of `holder_cards`, ids only)."""
        async for doc in self.holder_cards.find({}, {"_id": 1}, batch_size=10_000):
            yield str(doc["_id"])

    async def save_card(self, card: CardView, *, new_holder: bool) -> None:
        """Replace the view of a card number, and list it under its holder when it is new
        to them."""
        if card.holder and new_holder:
            self.known_holders.add((card.holder,))
            await self.holder_cards.update_one(
                {"_id": card.holder}, {"$addToSet": {"cards": card.number}}, upsert=True
            )
        await self.cards.replace_one({"_id": card.number}, _card_document(card), upsert=True)

    async def save_issued_cards(self, cards: Sequence[CardView]) -> None:
        """Views of newly issued cards (one per number), written without reading them first:
        holders met for the first time are listed with one `insert_many`, holders listed before
        (renewals, reissues, a redelivery, another replica's insert of the same new holder)
        gain the number with one update each, and first issues are inserted with one
        `insert_many`. A later issue, or a first issue whose view exists (a redelivery),
        replaces the view unless that shows a later issue already (the upsert's insert is then
        refused, and the view stays as it is), one command each."""
        per_holder: dict[str, list[str]] = {}
        for card in cards:
            if card.holder:
                per_holder.setdefault(card.holder, []).append(card.number)
        self.known_holders.add(per_holder)
        listed_before = await insert_new(
            self.holder_cards,
            [{"_id": holder, "cards": numbers} for holder, numbers in per_holder.items()],
        )
        for holder in listed_before:
            await self.holder_cards.update_one(
                {"_id": holder}, {"$addToSet": {"cards": {"$each": per_holder[holder]}}}
            )
        first = [card for card in cards if card.issue_count == 1]
        shown = await insert_new(
            self.cards, [{"_id": card.number, **_card_document(card)} for card in first]
        )
        for card in cards:
            if card.issue_count > 1 or card.number in shown:
                with contextlib.suppress(DuplicateKeyError):
                    await self.cards.replace_one(
                        {"_id": card.number, "issue_count": {"$lte": card.issue_count}},
                        _card_document(card),
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


def _step_document(application_id: str, step: Step) -> Document:
    """A step as stored; times as ISO text, to the microsecond (a BSON date keeps
    milliseconds, and the fold orders an application's steps by time)."""
    doc: Document = {"_id": f"{application_id}|{step.key}", "application_id": application_id}
    if isinstance(step, StatusStep):
        doc |= {
            "status": step.status.value,
            "at": step.at.isoformat(),
            "ready_on": _iso(step.ready_on),
            "rejection": step.rejection,
            "dispatch": step.dispatch,
        }
    elif isinstance(step, SlaStep):
        doc |= {"sla": step.standing.value, "at": _iso(step.at), "event_id": step.event_id}
    elif isinstance(step, DueStep):
        doc |= {
            "due_date": step.due_date.isoformat(),
            "provisional": step.provisional,
            "at": step.at.isoformat(),
            "event_id": step.event_id,
            "calendar": step.calendar,
            "extended": step.extended,
        }
    elif isinstance(step, ExtensionStep):
        doc["extension"] = {
            "working_days": step.working_days,
            "reason": step.reason,
            "granted_at": step.granted_at.isoformat(),
        }
    else:
        doc["card"] = {
            "number": step.number,
            "issue_count": step.issue_count,
            "valid_from": step.valid_from.isoformat(),
            "valid_until": step.valid_until.isoformat(),
            "issuing_authority": step.issuing_authority,
        }
    return doc


def _step(doc: Document) -> Step:
    if "status" in doc:
        return StatusStep(
            ApplicationStatus(doc["status"]),
            datetime.fromisoformat(doc["at"]),
            ready_on=_day(doc.get("ready_on")),
            rejection=doc.get("rejection"),
            dispatch=doc.get("dispatch"),
        )
    if "sla" in doc:
        at = doc.get("at")
        return SlaStep(
            SlaState(doc["sla"]),
            datetime.fromisoformat(at) if at else None,
            str(doc.get("event_id", "")),
        )
    if "due_date" in doc:
        return DueStep(
            date.fromisoformat(doc["due_date"]),
            bool(doc["provisional"]),
            datetime.fromisoformat(doc["at"]),
            str(doc["event_id"]),
            doc.get("calendar"),
            extended=bool(doc.get("extended", False)),
        )
    if "extension" in doc:
        extension = doc["extension"]
        return ExtensionStep(
            int(extension["working_days"]),
            str(extension["reason"]),
            datetime.fromisoformat(extension["granted_at"]),
        )
    card = doc["card"]
    return CardStep(
        card["number"],
        int(card["issue_count"]),
        date.fromisoformat(card["valid_from"]),
        date.fromisoformat(card["valid_until"]),
        card["issuing_authority"],
    )


def _card_document(card: CardView) -> Document:
    return {
        "issue_count": card.issue_count,
        "status": card.status.value,
        "holder": card.holder,
        "valid_from": _iso(card.valid_from),
        "valid_until": _iso(card.valid_until),
        "issuing_authority": card.issuing_authority,
        "application_id": card.application_id,
    }


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
