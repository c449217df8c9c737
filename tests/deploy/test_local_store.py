"""The local store, FerretDB on PostgreSQL, as the services rely on it.

FerretDB sends an equality filter `{f: v}` to PostgreSQL as `_jsonb->'f' @> v`, which its own
btree indexes cannot serve; the local wrapper adds a GIN index for `_id` and for every indexed
field, and makes PostgreSQL plan each query with its parameters. Without both, every lookup
reads the whole collection (see docs/architecture.md). FerretDB's `explain` runs PostgreSQL's
EXPLAIN on the very query, with the very connection settings, a `find` uses.

"First one wins" steps rely on unique indexes refusing a second document, one by one, with
MongoDB's duplicate key code, also inside an unordered `insert_many`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from permits_common.mongo import DUPLICATE_KEY, insert_new

pytestmark = pytest.mark.integration

DOCUMENTS = 20_000
LOOKUP_INDEX_PREFIX = "permits_gin_"
PLAN_CACHE_SWITCH = 5
"""Executions of a prepared statement after which PostgreSQL may switch to a generic plan."""

Document = dict[str, Any]


def _index_scans(plan: Document) -> list[str]:
    """The names of the indexes a PostgreSQL JSON plan reads, at any depth."""
    names = [plan["Index Name"]] if "Index Name" in plan else []
    for child in plan.get("Plans", []):
        names += _index_scans(child)
    return names


async def _postgres_plan(collection: AsyncCollection[Document], query: Document) -> Document:
    """The PostgreSQL plan FerretDB would run for a `find` with this filter."""
    database = collection.database
    answer = await database.command("explain", {"find": collection.name, "filter": query})
    planner: Document = answer["queryPlanner"]
    if "Plan" not in planner:
        pytest.skip("the store is not FerretDB on PostgreSQL")
    assert answer.get("filterPushdown") is True, answer
    plan: Document = planner["Plan"]
    return plan


@pytest.fixture
async def database(infrastructure: dict[str, str]) -> Any:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infrastructure["PERMITS_MONGO_URL"])
    name = f"permits_test_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_lookups_by_id_and_by_indexed_fields_use_an_index(database: Any) -> None:
    applications: AsyncCollection[Document] = database["applications"]
    await applications.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
    await applications.create_index([("idempotency_key", ASCENDING)], unique=True)
    await applications.insert_many(
        [
            {"_id": f"a{i}", "status": f"s{i % 100}", "idempotency_key": f"k{i}", "due_at": i}
            for i in range(DOCUMENTS)
        ]
    )
    lookups = [{"_id": "a12345"}, {"status": "s7"}, {"idempotency_key": "k777"}]

    async def all_indexed() -> bool:
        plans = [await _postgres_plan(applications, query) for query in lookups]
        return all(
            any(name.startswith(LOOKUP_INDEX_PREFIX) for name in _index_scans(plan))
            for plan in plans
        )

    async with asyncio.timeout(15):
        while not await all_indexed():
            await asyncio.sleep(0.2)

    for query in lookups:
        for _ in range(PLAN_CACHE_SWITCH + 3):
            plan = await _postgres_plan(applications, query)
            assert any(name.startswith(LOOKUP_INDEX_PREFIX) for name in _index_scans(plan)), plan
    assert await applications.find_one({"_id": "a12345"}) == {
        "_id": "a12345",
        "status": "s45",
        "idempotency_key": "k12345",
        "due_at": 12345,
    }
    assert await applications.count_documents({"status": "s7"}) == DOCUMENTS // 100


async def test_an_unordered_insert_many_refuses_each_duplicate_with_the_duplicate_key_code(
    database: Any,
) -> None:
    requests: AsyncCollection[Document] = database["requests"]
    await requests.create_index([("idempotency_key", ASCENDING)], unique=True)
    await requests.insert_one({"_id": "r1", "idempotency_key": "k1", "version": 1})
    batch = [
        {"_id": "r1", "idempotency_key": "k-other", "version": 2},
        {"_id": "r2", "idempotency_key": "k1", "version": 2},
        {"_id": "r3", "idempotency_key": "k3", "version": 2},
        {"_id": "r3", "idempotency_key": "k3b", "version": 3},
    ]

    with pytest.raises(BulkWriteError) as refused:
        await requests.insert_many(batch, ordered=False)

    details = refused.value.details
    assert details["nInserted"] == 1
    assert [(error["index"], error["code"]) for error in details["writeErrors"]] == [
        (0, DUPLICATE_KEY),
        (1, DUPLICATE_KEY),
        (3, DUPLICATE_KEY),
    ]
    assert await requests.find({}, sort=[("_id", ASCENDING)]).to_list() == [
        {"_id": "r1", "idempotency_key": "k1", "version": 1},
        {"_id": "r3", "idempotency_key": "k3", "version": 2},
    ]

    existing = await insert_new(
        requests,
        [
            {"_id": "r3", "idempotency_key": "k3c", "version": 4},
            {"_id": "r4", "idempotency_key": "k4", "version": 4},
            {"_id": "r5", "idempotency_key": "k1", "version": 4},
        ],
    )
    assert existing == {"r3", "r5"}
    assert await requests.count_documents({}) == 3
    assert await requests.find_one({"_id": "r3"}) == {
        "_id": "r3",
        "idempotency_key": "k3",
        "version": 2,
    }
