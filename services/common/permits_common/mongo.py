"""The document store through PyMongo's async API, and the consumer-side dedup log.

Works against MongoDB in production and FerretDB locally, so it uses only what both support:
no transactions, change streams, TTL indexes or dotted keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
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


class ProcessedEvents:
    """Which event ids one consumer has already handled, so redelivery does nothing twice.

    Lookups are by `_id` only, one per id, run concurrently: FerretDB answers `{_id: value}` from
    the table's primary key but scans the whole collection for anything else (`$in`
    included), and this collection grows with every event the consumer ever handled.
    """

    def __init__(
        self, database: AsyncDatabase[Document], consumer: str, *, concurrency: int = 8
    ) -> None:
        self._collection: AsyncCollection[Document] = database["processed_events"]
        self._consumer = consumer
        self._concurrency = asyncio.Semaphore(concurrency)

    def _key(self, event_id: str) -> str:
        return f"{self._consumer}|{event_id}"

    async def _handled(self, event_id: str) -> bool:
        async with self._concurrency:
            found = await self._collection.find_one({"_id": self._key(event_id)}, {"_id": 1})
        return found is not None

    async def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of ids already handled."""
        unique = list(dict.fromkeys(event_ids))
        answers = await asyncio.gather(*(self._handled(event_id) for event_id in unique))
        return {event_id for event_id, handled in zip(unique, answers, strict=True) if handled}

    async def mark(self, event_ids: Iterable[str]) -> None:
        """Record ids as handled; ids recorded before are fine."""
        await insert_new(
            self._collection,
            [{"_id": self._key(event_id)} for event_id in dict.fromkeys(event_ids)],
        )


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


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it: for documents
    that several tasks of one process update (FerretDB rewrites the whole document on update,
    so concurrent updates of one document can lose one)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the key's lock for the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
