"""The issuance store: register, number claims, decisions, deadlines and production orders.

FerretDB 1.x (the local and test store) does not apply `findAndModify` or conditional updates
atomically: measured with 200 concurrent `$inc` upserts on one counter, the values came back
with duplicates, and 100 concurrent "set owner where owner is null" updates had two winners.
Inserting a document whose `_id` exists fails atomically on both FerretDB and MongoDB, so every
"first one wins" decision here is an insert keyed by what must be unique (the permit number,
the application id, the person, the order attempt); counters are only a hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from permits_common.domain.calendar import YearArrangement, official_arrangement
from permits_common.domain.card import HolderStatus
from permits_common.mongo import Document, ensure_index, insert_new
from permits_issuance.domain.register import HolderRecord

STARTED_TOGETHER = "started_together"
"""The field holding the token of the batch of acceptances that started an application's
deadline; its person claim and production schedule entry carry it too, so what was written
together can be removed together with an indexed equality (see `delete_together`)."""

PEOPLE_SEEN_MIGRATION = "people_seen_backfilled"
"""The `store_migrations` entry saying every register entry written before `people_seen`
existed has its person marked."""

MARKERS_PER_INSERT = 1000
"""People marked per insert when earlier register entries are marked."""


@dataclass(frozen=True, slots=True)
class HolderIssue:
    """A person's latest card issue, as the register records it."""

    base: str
    card_number: str
    issue_count: int
    valid_until: date
    application_id: str
    region: str


def _holder_entry(issue: HolderIssue) -> Document:
    return {
        "card_number": issue.card_number,
        "issue_count": issue.issue_count,
        "status": HolderStatus.ACTIVE.value,
        "valid_until": iso(issue.valid_until),
        "application_id": issue.application_id,
        "region": issue.region,
    }


def iso(day: date) -> str:
    """Dates are stored as ISO strings: ordered, comparable and FerretDB-safe."""
    return day.isoformat()


def day_of(value: str) -> date:
    """Back from a stored ISO date."""
    return date.fromisoformat(value)


class IssuanceStore:
    """Collections of the issuance database, with the few operations the use cases need."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self.counters: AsyncCollection[Document] = database["sequence_counters"]
        self.permit_numbers: AsyncCollection[Document] = database["permit_numbers"]
        self.person_claims: AsyncCollection[Document] = database["person_claims"]
        self.issuances: AsyncCollection[Document] = database["issuances"]
        self.holders: AsyncCollection[Document] = database["holders"]
        self.people_seen: AsyncCollection[Document] = database["people_seen"]
        self.migrations: AsyncCollection[Document] = database["store_migrations"]
        self.deadlines: AsyncCollection[Document] = database["deadlines"]
        self.closed_deadlines: AsyncCollection[Document] = database["closed_deadlines"]
        """Deadlines whose application was answered (card ready, or refused): read only by
        application id, so they leave `deadlines` and its many indexes behind."""
        self.orders: AsyncCollection[Document] = database["production_orders"]
        self.order_schedule: AsyncCollection[Document] = database["order_schedule"]
        self.leases: AsyncCollection[Document] = database["leases"]
        self.completions: AsyncCollection[Document] = database["order_completions"]
        self.calendar_years: AsyncCollection[Document] = database["calendar_years"]

    async def ensure_indexes(self) -> None:
        """Indexes that keep every timer scan to what is due."""
        await ensure_index(self.permit_numbers, [("application_id", ASCENDING)])
        await ensure_index(self.holders, [("card_number", ASCENDING)])
        await ensure_index(self.holders, [("status", ASCENDING), ("valid_until", ASCENDING)])
        await ensure_index(self.deadlines, [("state", ASCENDING), ("at_risk_on", ASCENDING)])
        await ensure_index(self.deadlines, [("state", ASCENDING), ("breach_on", ASCENDING)])
        await ensure_index(self.deadlines, [("open", ASCENDING), ("due_date", ASCENDING)])
        await ensure_index(self.deadlines, [("provisional", ASCENDING), ("open", ASCENDING)])
        await ensure_index(self.deadlines, [("calendar_years", ASCENDING), ("open", ASCENDING)])
        await ensure_index(self.deadlines, [("provisional_years", ASCENDING), ("open", ASCENDING)])
        await ensure_index(self.deadlines, [("started_together", ASCENDING)])
        await ensure_index(self.order_schedule, [("next_attempt_at", ASCENDING)])
        await ensure_index(self.order_schedule, [(STARTED_TOGETHER, ASCENDING)], sparse=True)
        await ensure_index(self.person_claims, [(STARTED_TOGETHER, ASCENDING)], sparse=True)
        await self._mark_earlier_holders_seen()

    async def _mark_earlier_holders_seen(self) -> None:
        """Mark the people of register entries written before `people_seen` existed, once per
        database (`mark_seen` relies on every entry's person being marked). Safe to repeat
        and to run in several workers at once: markers are inserts that keep what exists."""
        if await self.migrations.find_one({"_id": PEOPLE_SEEN_MIGRATION}) is not None:
            return
        chunk: list[str] = []
        async for doc in self.holders.find({}, {"_id": 1}):
            chunk.append(str(doc["_id"]))
            if len(chunk) == MARKERS_PER_INSERT:
                await self.mark_seen(chunk)
                chunk = []
        await self.mark_seen(chunk)
        await insert_new(self.migrations, [{"_id": PEOPLE_SEEN_MIGRATION}])

    async def deadline(self, application_id: str) -> Document | None:
        """The application's deadline, open or closed (None when it never started)."""
        return await self.deadlines.find_one(
            {"_id": application_id}
        ) or await self.closed_deadlines.find_one({"_id": application_id})

    async def insert_first(self, collection: AsyncCollection[Document], doc: Document) -> Document:
        """Insert unless a document with this `_id` exists; either way return the one stored."""
        try:
            await collection.insert_one(doc)
        except DuplicateKeyError:
            existing = await collection.find_one({"_id": doc["_id"]})
            if existing is not None:
                return existing
            await collection.insert_one(doc)
        return doc

    async def stored_counter(self, key: str) -> int:
        """The stored counter's next index (0-based; 0 when the key was never written)."""
        doc = await self.counters.find_one({"_id": key})
        return int(doc["next"]) if doc else 0

    async def raise_counter(self, key: str, at_least: int) -> None:
        """Move a lagging counter hint past indexes known to be taken (two first upserts at
        once can both try the insert on FerretDB: the loser updates)."""
        change = {"$max": {"next": at_least}}
        try:
            await self.counters.update_one({"_id": key}, change, upsert=True)
        except DuplicateKeyError:
            await self.counters.update_one({"_id": key}, change)

    async def claim_number(self, number: str, application_id: str, at: datetime) -> str | None:
        """Claim a permit number for an application; the owner's application id if taken."""
        try:
            await self.permit_numbers.insert_one(
                {"_id": number, "application_id": application_id, "claimed_at": at}
            )
        except DuplicateKeyError:
            existing = await self.permit_numbers.find_one({"_id": number})
            return str(existing["application_id"]) if existing else ""
        return None

    async def claim_numbers(self, claims: Sequence[tuple[str, str]], at: datetime) -> set[str]:
        """Claim (number, application id) pairs with one insert; returns the numbers that
        were taken already (their claims are left as they are)."""
        taken = await insert_new(
            self.permit_numbers,
            [
                {"_id": number, "application_id": application_id, "claimed_at": at}
                for number, application_id in claims
            ],
        )
        return {str(number) for number in taken}

    async def insert_all_first(
        self, collection: AsyncCollection[Document], docs: Sequence[Document]
    ) -> dict[Any, Document]:
        """`insert_first` for many documents with one insert: each `_id`'s stored document,
        read back (one by one) only where an earlier one was kept."""
        taken = await insert_new(collection, docs)
        stored = {doc["_id"]: doc for doc in docs}
        for doc in docs:
            if doc["_id"] in taken:
                stored[doc["_id"]] = await self.insert_first(collection, doc)
        return stored

    async def claim_person(self, base: str, application_id: str) -> bool:
        """Hold the person's one open application slot; True when this application holds it."""
        for _ in range(3):
            try:
                await self.person_claims.insert_one({"_id": base, "application_id": application_id})
                return True
            except DuplicateKeyError:
                existing = await self.person_claims.find_one({"_id": base})
                if existing is not None:
                    return bool(existing["application_id"] == application_id)
        return False

    async def claim_persons(self, claims: Sequence[tuple[str, str, str | None]]) -> set[str]:
        """`claim_person` for (base, application id, batch token) triples of different people
        with one insert, each claim tagged with its token (for `release_persons`); returns the
        application ids that hold their person's slot (a slot taken already is read back, one
        by one)."""
        taken = await insert_new(
            self.person_claims,
            [
                {"_id": base, "application_id": application_id, **batch_tag(token)}
                for base, application_id, token in claims
            ],
        )
        return {
            application_id
            for base, application_id, _ in claims
            if base not in taken or await self.claim_person(base, application_id)
        }

    async def release_person(self, base: str, application_id: str) -> None:
        """Free the person's slot, only if this application holds it."""
        await self.person_claims.delete_one({"_id": base, "application_id": application_id})

    async def release_persons(self, held: Sequence[tuple[str, str, str | None]]) -> None:
        """`release_person` for (base, application id, batch token) triples: one delete per
        token (see `delete_together`)."""
        await delete_together(
            self.person_claims,
            [
                (token, {"_id": base, "application_id": application_id})
                for base, application_id, token in held
            ],
        )

    async def mark_seen(self, bases: Sequence[str]) -> set[str]:
        """Mark people as seen with one insert; returns those never marked before. Every
        register entry's person is marked before the entry is written (`record_issues`, the
        import of earlier cards, and once for older entries), so a person whose marker is new
        has no register entry: their `holder` look-up can be skipped. One insert of a batch's
        markers costs the store far less than a look-up per person that finds nothing."""
        if not bases:
            return set()
        marked_before = await insert_new(self.people_seen, [{"_id": base} for base in bases])
        return set(bases) - {str(base) for base in marked_before}

    async def holder(self, base: str) -> HolderRecord | None:
        """The register entry of a person (by travel-permit base number)."""
        return _holder(await self.holders.find_one({"_id": base}))

    async def holder_by_card(self, card_number: str) -> HolderRecord | None:
        """The register entry whose lifelong number this is."""
        return _holder(await self.holders.find_one({"card_number": card_number}))

    async def record_issues(self, issues: Sequence[HolderIssue]) -> None:
        """The people's latest issues are active from now on (written by the claim holders):
        the register entries of people met for the first time with one insert, the others
        (renewals, reissues, a callback the centre repeated) updated one by one."""
        entries = {issue.base: _holder_entry(issue) for issue in issues}
        await self.mark_seen(list(entries))
        existing = await insert_new(
            self.holders, [{"_id": base, **entry} for base, entry in entries.items()]
        )
        for base in existing:
            await self.holders.update_one({"_id": base}, {"$set": entries[base]})

    async def set_holder_status(
        self, card_number: str, issue_count: int, status: HolderStatus
    ) -> bool:
        """Change the status of the current issue only (an old issue's news changes nothing)."""
        result = await self.holders.update_one(
            {"card_number": card_number, "issue_count": issue_count},
            {"$set": {"status": status.value}},
        )
        return result.modified_count > 0

    def expired_cards(self, today: date, limit: int) -> Any:
        """Active issues whose last valid day is before today (index on status, valid_until)."""
        return self.holders.find(
            {"status": HolderStatus.ACTIVE.value, "valid_until": {"$lt": iso(today)}}
        ).limit(limit)

    async def load_calendar_years(self) -> list[YearArrangement]:
        """Official arrangements loaded by operators, so a restart keeps them."""
        return [
            official_arrangement(
                int(doc["_id"]),
                (day_of(d) for d in doc["holidays"]),
                (day_of(d) for d in doc["workdays"]),
            )
            async for doc in self.calendar_years.find({})
        ]

    async def save_calendar_year(
        self, year: int, holidays: Iterable[date], workdays: Iterable[date]
    ) -> None:
        """Keep a loaded arrangement (the last load of a year wins)."""
        await self.calendar_years.replace_one(
            {"_id": year},
            {
                "_id": year,
                "holidays": sorted(iso(d) for d in holidays),
                "workdays": sorted(iso(d) for d in workdays),
            },
            upsert=True,
        )

    async def take_lease(self, key: str, now: datetime, expires_at: datetime) -> bool:
        """An exclusive, expiring right to do one step (e.g. send one order attempt)."""
        try:
            await self.leases.insert_one({"_id": key, "expires_at": expires_at})
            return True
        except DuplicateKeyError:
            existing = await self.leases.find_one({"_id": key})
            if existing is None or existing["expires_at"] > now:
                return False
            await self.leases.delete_one({"_id": key, "expires_at": existing["expires_at"]})
            try:
                await self.leases.insert_one({"_id": key, "expires_at": expires_at})
            except DuplicateKeyError:
                return False
            return True


def _holder(doc: Document | None) -> HolderRecord | None:
    if doc is None:
        return None
    return HolderRecord(
        travel_permit_base=str(doc["_id"]),
        card_number=str(doc["card_number"]),
        issue_count=int(doc["issue_count"]),
        status=HolderStatus(doc["status"]),
        valid_until=day_of(doc["valid_until"]),
    )


def batch_tag(token: str | None) -> Document:
    """The batch token field of a document written with one (none without)."""
    return {STARTED_TOGETHER: token} if token else {}


def token_of(deadline: Document | None) -> str | None:
    """The batch token of a stored deadline (None for one started before tokens existed)."""
    token = (deadline or {}).get(STARTED_TOGETHER)
    return str(token) if token else None


async def delete_together(
    collection: AsyncCollection[Document], doomed: Sequence[tuple[str | None, Document]]
) -> None:
    """Delete the document each filter names (an equality on `_id`, maybe more), given the
    batch token it was written with. FerretDB hands PostgreSQL only top-level equalities and
    reads the whole collection for any other filter, so the filters of one token go in one
    delete led by the indexed equality on the token; if that deleted fewer than it was given
    (a document written without the token, or gone already), each of them is deleted on its
    own, which is harmless for the ones already gone."""
    by_token: dict[str | None, list[Document]] = {}
    for token, named in doomed:
        by_token.setdefault(token, []).append(named)
    for token, filters in by_token.items():
        if token is not None and len(filters) > 1:
            result = await collection.delete_many({STARTED_TOGETHER: token, "$or": filters})
            if result.deleted_count == len(filters):
                continue
        for named in filters:
            await collection.delete_one(named)
