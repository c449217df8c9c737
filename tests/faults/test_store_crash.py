"""kill -9 of the local store: FerretDB with its PostgreSQL, or PostgreSQL alone under FerretDB.

Whatever the store acknowledged before the crash is there after `up`, unique indexes still
refuse duplicates, and a FerretDB whose PostgreSQL died serves again once PostgreSQL is back,
without a restart of its own. Only a store this tool started is killed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

INFRA = Path(__file__).resolve().parents[2] / "deploy" / "local" / "infra.py"
DOCUMENTS = 500
Document = dict[str, Any]


def _infra() -> ModuleType:
    spec = importlib.util.spec_from_file_location("permits_infra_crash", INFRA)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def collection(infrastructure: dict[str, str]) -> AsyncIterator[AsyncCollection[Document]]:
    infra = _infra()
    states = {entry.name: entry.state for entry in infra.status()}
    if states.get("store") != "running" or states.get("postgres") != "running":
        pytest.skip("the store is not one this tool started")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        infrastructure["PERMITS_MONGO_URL"], serverSelectionTimeoutMS=5000
    )
    name = f"permits_test_{uuid.uuid4().hex[:10]}"
    try:
        records: AsyncCollection[Document] = client[name]["records"]
        await records.create_index([("key", ASCENDING)], unique=True)
        await records.insert_many([{"_id": f"r{i}", "key": f"k{i}"} for i in range(DOCUMENTS)])
        yield records
    finally:
        await client.drop_database(name)
        await client.close()


async def _answers(collection: AsyncCollection[Document]) -> int:
    """The document count, once the store answers again (it may take a few attempts)."""
    async with asyncio.timeout(60):
        while True:
            try:
                return await collection.count_documents({})
            except PyMongoError:
                await asyncio.sleep(0.5)


async def _still_unique(collection: AsyncCollection[Document]) -> None:
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"_id": "another", "key": "k1"})
    await collection.insert_one({"_id": f"new-{uuid.uuid4().hex}", "key": uuid.uuid4().hex})


async def test_kill_9_of_the_store_loses_nothing_it_acknowledged(
    collection: AsyncCollection[Document],
) -> None:
    infra = _infra()
    await asyncio.to_thread(infra.kill, "store")
    states = {entry.name: entry.state for entry in infra.status()}
    assert states["store"] == states["postgres"] == "stopped"

    await asyncio.to_thread(infra.up, "store")

    assert await _answers(collection) == DOCUMENTS
    assert await collection.find_one({"_id": "r123"}) == {"_id": "r123", "key": "k123"}
    await _still_unique(collection)


async def test_ferretdb_serves_again_after_its_postgresql_is_killed_and_restarted(
    collection: AsyncCollection[Document],
) -> None:
    infra = _infra()
    store_pid = next(entry.pid for entry in infra.status() if entry.name == "store")
    await asyncio.to_thread(infra.kill, "postgres")
    with pytest.raises(PyMongoError):
        await collection.find_one({"_id": "r1"})

    await asyncio.to_thread(infra.up, "postgres")

    assert await _answers(collection) == DOCUMENTS
    await _still_unique(collection)
    assert next(entry.pid for entry in infra.status() if entry.name == "store") == store_pid
