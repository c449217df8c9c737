"""What a developer's running system holds, to prove the test suite leaves it alone.

`./permits test` runs its own Kafka and store (other ports, `.local/test`); a developer may
have `./permits run` up on the usual ones at the same time. The root conftest takes this
snapshot of the usual instance before the session and again after it, and fails the run when
anything differs: a topic created, deleted or written to, a database created or dropped, a
collection's document count changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

DEV_KAFKA = "127.0.0.1:9092"
DEV_STORE = "mongodb://127.0.0.1:27017/"

COUNTED_COLLECTIONS = 200
"""Above this many collections only their names are compared: counting each takes too long."""

Snapshot = dict[str, Any]


async def _kafka_snapshot(bootstrap: str) -> dict[str, int] | None:
    """Topic-partition → end offset, or None when no broker answers there."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(consumer.start(), 10)
    except Exception:
        with contextlib.suppress(Exception):
            await consumer.stop()
        return None
    try:
        topics = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in sorted(topics)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        return {f"{tp.topic}[{tp.partition}]": offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


def _store_snapshot(url: str) -> dict[str, int] | None:
    """Database.collection → document count, or None when no store answers there."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        names = [
            (database, collection)
            for database in client.list_database_names()
            for collection in client[database].list_collection_names()
        ]
        if len(names) > COUNTED_COLLECTIONS:
            return {f"{database}.{collection}": -1 for database, collection in names}
        return {
            f"{database}.{collection}": client[database][collection].estimated_document_count()
            for database, collection in names
        }
    except PyMongoError:
        return None
    finally:
        client.close()


def snapshot(kafka: str = DEV_KAFKA, store: str = DEV_STORE) -> Snapshot:
    """The developer instance's topics and databases as they are now."""
    return {"kafka": asyncio.run(_kafka_snapshot(kafka)), "store": _store_snapshot(store)}


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed, one line each (empty when nothing did)."""
    changes = []
    for part in ("kafka", "store"):
        old, new = before.get(part), after.get(part)
        if old is None or new is None:
            if (old is None) != (new is None):
                changes.append(f"{part}: {'appeared' if old is None else 'went away'}")
            continue
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(f"{part}: {key}: {old.get(key)} -> {new.get(key)}")
    return changes
