"""The document store through PyMongo's async API, and the consumer-side dedup log.

Works against MongoDB in production and FerretDB locally, so it uses only what both support:
no transactions, change streams, TTL indexes or dotted keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence, Set
from contextvars import Context
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

from permits_common.settings import CommonSettings
from permits_common.store_profile import profile_listeners

Document = dict[str, Any]

TRANSIENT_STORE_ERRORS: tuple[type[Exception], ...] = (ConnectionFailure,)
"""Errors that mean "the store is unreachable right now": answer 503 or retry, never 500."""


def mongo_client(settings: CommonSettings) -> AsyncMongoClient[Document]:
    """A client with short timeouts, so an outage surfaces quickly as a retryable error."""
    timeout = settings.mongo_timeout_ms
    return AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout * 5, 10_000),
        tls=settings.mongo_tls,
        tlsCAFile=settings.mongo_ca_file,
        retryWrites=False,
        maxPoolSize=settings.mongo_max_pool_size,
        appname="permits",
        event_listeners=profile_listeners(),
    )


async def ping(database: AsyncDatabase[Document]) -> bool:
    """True when the store answers right now (for `/readyz`)."""
    try:
        await database.command("ping")
    except PyMongoError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Delivered:
    """One consumed event: its id and where Kafka holds it (topic, partition, offset)."""

    event_id: str
    topic: str
    partition: int
    offset: int

    @property
    def position(self) -> str:
        """The record's place in Kafka, unique for the life of the topic."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a batch's claim decided: the ids to handle, and which of those were claimed before
    (a redelivery of a record whose work may or may not have been done)."""

    handle: set[str]
    again: set[str]


class ProcessedEvents:
    """Which event ids one consumer has taken on, so a duplicate event does nothing twice.

    One command per batch: an unordered `insert_many` of the batch's ids (keyed by consumer and
    event id) with each record's Kafka position. An id the store refuses was claimed before;
    the claim is read back (by `_id`, one per refused id, which only happens after a crash, a
    rebalance or a true duplicate) and decides:
    - claimed at this very position: the same Kafka record is being delivered again, which
      only happens when its offset was never committed, so its work may be unfinished: handle
      it again (the handlers are idempotent);
    - claimed at another position: another copy of the event, whose own record is either
      committed (its work done) or will itself be redelivered and handled: skip this one.
    So an id claimed before its work is done never makes a redelivered event be skipped.
    """

    def __init__(
        self, database: AsyncDatabase[Document], consumer: str, *, concurrency: int = 8
    ) -> None:
        self._collection: AsyncCollection[Document] = database["processed_events"]
        self._consumer = consumer
        self._concurrency = asyncio.Semaphore(concurrency)

    def _key(self, event_id: str) -> str:
        return f"{self._consumer}|{event_id}"

    async def _claimed_at(self, event_id: str) -> str | None:
        async with self._concurrency:
            found = await self._collection.find_one({"_id": self._key(event_id)}, {"at": 1})
        return None if found is None else str(found.get("at"))

    async def claim(
        self, delivered: Sequence[Delivered], unclaimed: Set[str] = frozenset()
    ) -> Claimed:
        """Claim a batch's events; the first record of an id in the batch stands for it. The
        ids in `unclaimed` are handed out without a claim: events whose handling is keyed by
        the event itself, so that doing it again changes nothing (a claim would only cost the
        store a document per event)."""
        first: dict[str, Delivered] = {}
        for item in delivered:
            first.setdefault(item.event_id, item)
        refused = await insert_new(
            self._collection,
            [
                {"_id": self._key(i), "at": item.position}
                for i, item in first.items()
                if i not in unclaimed
            ],
        )
        prefix = len(self._key(""))
        refused_ids = [key[prefix:] for key in refused]
        positions = await asyncio.gather(*(self._claimed_at(i) for i in refused_ids))
        again = {
            event_id
            for event_id, at in zip(refused_ids, positions, strict=True)
            if at is None or at == first[event_id].position
        }
        handle = (set(first) - set(refused_ids)) | again
        return Claimed(handle=handle, again=again)


DUPLICATE_KEY = 11000


async def insert_once(collection: AsyncCollection[Document], doc: Document) -> bool:
    """Insert unless one of the document's unique keys (its `_id`, or another unique index) is
    taken; True when this call inserted it. A unique insert is the one write FerretDB makes
    atomic, so "first one wins" steps use it."""
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


class GroupedInserts:
    """`insert_once` for many concurrent callers on one collection, with one unordered
    `insert_many` for all the documents that arrived while the previous one was being written.

    FerretDB's cost is per command far more than per document (an `insert_one` costs it
    several times what one document of an `insert_many` does), so a busy writer (intake's
    request path) groups its inserts the way a database groups commits: a caller alone is
    written at once, callers arriving meanwhile wait for that write and go together in the
    next. Each caller still gets its own answer: an unordered insert tries every document, and
    the store names each refused one (by its position) with its reason.
    """

    def __init__(self, collection: AsyncCollection[Document], *, max_batch: int = 256) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self._waiting: list[tuple[Document, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert_once(self, doc: Document) -> bool:
        """As `insert_once`: True when this call inserted the document, False when one of
        its unique keys was taken (by another document, possibly of the same group)."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((doc, answer))
        if self._writer is None:
            # A context of its own: the writer serves every caller, not the first one's request.
            self._writer = asyncio.create_task(self._write_waiting(), context=Context())
        return await answer

    async def _write_waiting(self) -> None:
        group: list[tuple[Document, asyncio.Future[bool]]] = []
        try:
            while self._waiting:
                group = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write(group)
            group = []
        finally:
            self._writer = None
            # Left only when the writer itself was cancelled (the loop is being torn down).
            for _, answer in [*group, *self._waiting]:
                if not answer.done():
                    answer.set_exception(ConnectionFailure("the grouped insert was stopped"))
            self._waiting.clear()

    async def _write(self, group: list[tuple[Document, asyncio.Future[bool]]]) -> None:
        refused: dict[int, Exception | None] = {}
        try:
            await self._collection.insert_many([doc for doc, _ in group], ordered=False)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                refused = dict.fromkeys(range(len(group)), exc)
            for error in exc.details.get("writeErrors", []):
                refused[error["index"]] = (
                    None
                    if error.get("code") == DUPLICATE_KEY
                    else WriteError(error.get("errmsg", ""), error.get("code"), error)
                )
        except Exception as exc:  # unreachable store, cancelled write: every caller learns it
            refused = dict.fromkeys(range(len(group)), exc)
        for position, (_, answer) in enumerate(group):
            if answer.done():  # the caller gave up waiting
                continue
            if position not in refused:
                answer.set_result(True)
            elif (error := refused[position]) is None:
                answer.set_result(False)
            else:
                answer.set_exception(error)


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> set[Any]:
    """Insert documents, leaving those whose `_id` exists as they are; returns those `_id`s."""
    if not docs:
        return set()
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != DUPLICATE_KEY for err in errors):
            raise
        return {docs[err["index"]]["_id"] for err in errors}
    return set()


WriteRequest = InsertOne[Document] | UpdateOne | UpdateMany | ReplaceOne[Document] | DeleteOne
BULK_CHUNK = 16
"""Statements per `bulk_write` command. FerretDB 1.x (SQLite) keeps every update statement's
query open until the whole command ends, one pooled SQLite connection each, and a database has
100: an update command of about 100 statements waits for itself forever and locks that database
for every client. Small chunks cost MongoDB a few round trips and keep FerretDB far from it."""


async def bulk_write_in_chunks(
    collection: AsyncCollection[Document],
    requests: Sequence[WriteRequest],
    *,
    ordered: bool = True,
    chunk: int = BULK_CHUNK,
) -> None:
    """`bulk_write` in commands of at most `chunk` statements, in order."""
    for start in range(0, len(requests), chunk):
        await collection.bulk_write(list(requests[start : start + chunk]), ordered=ordered)


async def ensure_index(
    collection: AsyncCollection[Document], keys: list[tuple[str, int]], **options: Any
) -> None:
    """Create an index, tolerating one that already exists with the same name."""
    try:
        await collection.create_index(keys, **options)
    except OperationFailure as exc:
        if exc.code not in (85, 86):
            raise
