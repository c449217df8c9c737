"""The local FerretDB wrapper gives every collection an index its `{_id: value}` queries use.

Without it, every lookup, update and delete by `_id` reads the whole SQLite table, and the
services' throughput falls as their collections grow (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration

LOOKUP = "_ferretdb_sjson->'$._id' = ?"
INFRA = Path(__file__).resolve().parents[2] / "deploy" / "local" / "infra.py"


def _store_data_dir() -> Path:
    """Where the local store keeps its SQLite files, as the infrastructure tool says."""
    spec = importlib.util.spec_from_file_location("permits_infra_paths", INFRA)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data_dir: Path = module.FERRETDB_DATA
    return data_dir


def _query_plans(database_file: Path) -> dict[str, str]:
    """For each collection table: how SQLite would run FerretDB's `_id` query on it."""
    with sqlite3.connect(f"file:{database_file}?mode=ro", uri=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE '\\_ferretdb\\_%' ESCAPE '\\'"
            )
        ]
        plans = {}
        for table in tables:
            rows = connection.execute(  # the table names come from sqlite_master itself
                f'EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "{table}" WHERE {LOOKUP}',  # noqa: S608
                ('"x"',),
            ).fetchall()
            plans[table] = " ".join(str(row[-1]) for row in rows)
    return plans


async def test_lookups_by_id_use_an_index_soon_after_a_collection_appears(
    infrastructure: dict[str, str],
) -> None:
    if "PERMITS_MONGO_URL" in os.environ:
        pytest.skip("the store is not the local FerretDB")
    name = f"permits_test_{uuid.uuid4().hex[:10]}"
    database_file = _store_data_dir() / f"{name}.sqlite"
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        infrastructure["PERMITS_MONGO_URL"]
    )
    try:
        await client[name]["applications"].insert_one({"_id": "a1", "status": "received"})
        await client[name]["cards"].insert_one({"_id": "c1"})
        plans: dict[str, str] = {}
        async with asyncio.timeout(10):
            while True:
                plans = _query_plans(database_file)
                if len(plans) == 2 and all("USING INDEX" in plan for plan in plans.values()):
                    break
                await asyncio.sleep(0.2)
        assert all("_permits_pk_lookup" in plan for plan in plans.values()), plans
        found = await client[name]["applications"].find_one({"_id": "a1"})
        assert found == {"_id": "a1", "status": "received"}
    finally:
        await client.drop_database(name)
        await client.close()
