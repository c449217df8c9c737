"""Store lookups at 20,000 documents: what one indexed command costs on the store in use.

One client, one command at a time, on a fresh collection of 20,000 documents of ~1.2 KB with
the kinds of indexes the services declare (a unique field, a compound index): `find_one` by
`_id`, `find_one` by a unique indexed field, `update_one` by `_id`. The baseline, in the same
rounds on the same connection, is a `ping`: the store's cost per command with no data behind
it. A ratio near 1 means the lookup is served by an index; a ratio that grows with the
collection means it reads the collection. Each kind stops after its count or after a time
limit per round, so a store that scans still finishes.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING, MongoClient

from bench.common import MONGO, median, ratio, say, stamp

BATCH = 1000
PADDING = "x" * 1000
SECONDS_PER_KIND = 15.0
SETTLE_SECONDS = 3.0
"""Time for the local store's wrapper to add its lookup indexes to the new collection."""


def _document(number: int) -> dict[str, Any]:
    return {
        "_id": f"doc-{number:06d}",
        "key": f"key-{number:06d}",
        "status": f"s{number % 20}",
        "due_at": number,
        "padding": PADDING,
    }


def _timed_ms(operation: Callable[[int], object], numbers: list[int]) -> list[float]:
    """Per-command latencies, stopping early once the time limit is reached."""
    latencies = []
    deadline = time.monotonic() + SECONDS_PER_KIND
    for number in numbers:
        started = time.perf_counter()
        operation(number)
        latencies.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return latencies


def run(rounds: int = 3, documents: int = 20_000, lookups: int = 200) -> dict[str, Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(MONGO)
    name = f"bench_store_{uuid.uuid4().hex[:8]}"
    collection = client[name]["records"]
    try:
        collection.create_index([("key", ASCENDING)], unique=True)
        collection.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
        say(f"store: inserting {documents:,} documents into {name}")
        for start in range(0, documents, BATCH):
            collection.insert_many(
                [_document(n) for n in range(start, min(documents, start + BATCH))]
            )
        time.sleep(SETTLE_SECONDS)
        admin = client.admin
        kinds: dict[str, Callable[[int], object]] = {
            "ping": lambda _n: admin.command("ping"),
            "find_by_id": lambda n: collection.find_one({"_id": f"doc-{n:06d}"}),
            "find_by_unique_field": lambda n: collection.find_one({"key": f"key-{n:06d}"}),
            "update_by_id": lambda n: collection.update_one(
                {"_id": f"doc-{n:06d}"}, {"$set": {"due_at": -n}}
            ),
        }
        medians: dict[str, list[float]] = {kind: [] for kind in kinds}
        samples: dict[str, int] = dict.fromkeys(kinds, 0)
        rng = random.Random(20_000)
        for number in range(rounds):
            for kind, operation in kinds.items():
                latencies = _timed_ms(operation, rng.sample(range(documents), lookups))
                medians[kind].append(median(latencies))
                samples[kind] += len(latencies)
            say(
                f"store round {number + 1}: "
                + ", ".join(f"{kind} {values[-1]:.2f} ms" for kind, values in medians.items())
            )
    finally:
        client.drop_database(name)
        client.close()
    figure = {f"{kind}_ms": round(median(values), 3) for kind, values in medians.items()}
    ping = figure["ping_ms"]
    return {
        "benchmark": "store",
        **stamp(),
        "setup": {
            "documents": documents,
            "document_bytes": len(PADDING) + 80,
            "rounds": rounds,
            "lookups_per_kind_per_round": lookups,
            "seconds_per_kind_per_round": SECONDS_PER_KIND,
            "samples": samples,
        },
        "figure": {
            **figure,
            "find_by_id_ratio_to_ping": ratio(figure["find_by_id_ms"], ping),
            "find_by_unique_field_ratio_to_ping": ratio(figure["find_by_unique_field_ms"], ping),
            "update_by_id_ratio_to_ping": ratio(figure["update_by_id_ms"], ping),
        },
        "rounds": {kind: [round(value, 3) for value in values] for kind, values in medians.items()},
    }
