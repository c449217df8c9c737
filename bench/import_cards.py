"""Import of earlier cards: 100,000 cards from a file into the register until verification
knows every one of them, against the time a bare aiokafka producer needs to put the same card
events on the broker (the floor: the import validates, writes the register and publishes them).

The run has its own card topic, so the shared one (and whoever consumes it) never sees these
cards: the rights service of the run reads that topic from the start, the import writes it. The
run's topic namespace keeps the agency feeds and audit entries of its cards (a dozen of each per
card) off the shared topics too: tests that read a feed from its start must not wade through
millions of benchmark events.
Visible means: every card of a sample (the last lines of the file and a random spread) gets an
answer other than `not_found` from GET /api/v1/verify.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    KAFKA,
    MONGO,
    cleanup,
    create_topic,
    database_names,
    make_stack,
    new_run_id,
    say,
    stamp,
)
from permits_issuance.simulator.earlier_export import write

AGENCY = {"Authorization": "Bearer dev-agency-hotel"}
SAMPLE = 300


async def _bare_produce(topic: str, lines: list[bytes]) -> float:
    """Seconds for a plain idempotent producer to put one event per line on the broker."""
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, enable_idempotence=True, acks="all", linger_ms=20
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for start in range(0, len(lines), 1000):
            futures = [
                await producer.send(topic, line, key=_key(line))
                for line in lines[start : start + 1000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def _visible(base: str, sample: list[dict[str, Any]], deadline: float) -> float:
    """Poll verification until no card of the sample is unknown; the moment it happened. A
    round asks for the cards still unknown until one of them is unknown again (a card once
    known stays known): asking for all 300 five times a second took a share of the very
    service being measured, at the end of the run when it is busiest."""
    pending = list(sample)
    async with httpx.AsyncClient(base_url=base, headers=AGENCY, timeout=10) as client:
        while pending and time.monotonic() < deadline:
            while pending:
                card = pending[0]
                answer = await client.get(
                    "/api/v1/verify", params={"number": card["card_number"], "name": card["name"]}
                )
                if answer.status_code != 200 or answer.json()["status"] == "not_found":
                    break
                pending.pop(0)
            if pending:
                await asyncio.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} sampled cards still unknown to verification")
    return time.monotonic()


def run(cards: int = 100_000, rounds: int = 1) -> dict[str, Any]:
    """`rounds` runs, each with its own file, topics and rights service; the figure is the
    middle round by time to visible (the faster middle one of an even count), with its import
    time and bare produce."""
    results = [_round(cards) for _ in range(rounds)]
    results.sort(key=lambda result: float(result["figure"]["visible_seconds"]))
    chosen = results[(len(results) - 1) // 2]
    chosen["setup"]["rounds"] = [
        {
            "import_seconds": r["figure"]["import_seconds"],
            "visible_seconds": r["figure"]["visible_seconds"],
        }
        for r in results
    ]
    return chosen


def _round(cards: int) -> dict[str, Any]:
    run_id = new_run_id("import")
    topic = f"{run_id}-cards"
    asyncio.run(create_topic(topic))
    folder = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
    path = folder / "earlier.jsonl"
    write(path, cards, bad=0.01, seed=random.randrange(10**6))
    lines = path.read_bytes().splitlines()
    say(f"import: {cards} lines written to {path}")
    stack = make_stack(
        run_id,
        {
            "PERMITS_CARDS_TOPIC": topic,
            "PERMITS_TOPIC_NAMESPACE": f"{run_id}.",
            "PERMITS_RIGHTS_OFFSET_RESET": "earliest",
            "PERMITS_VERIFY_RATE_PER_SECOND": "1000000",
            "PERMITS_VERIFY_BURST": "1000000",
        },
    )
    try:
        stack.start(["rights"])
        env = {
            **os.environ,
            "PERMITS_KAFKA_BOOTSTRAP": KAFKA,
            "PERMITS_MONGO_URL": MONGO,
            "PERMITS_MONGO_DATABASE": database_names(run_id)["issuance"],
            "PERMITS_CARDS_TOPIC": topic,
            "PERMITS_TOPIC_NAMESPACE": f"{run_id}.",
        }
        chosen = lines[-SAMPLE // 2 :] + random.Random(3).sample(lines, SAMPLE // 2)
        sample = [card for raw in chosen if (card := _loads(raw)) and _importable(card)]
        started = time.monotonic()
        finished = subprocess.run(
            [sys.executable, "-m", "permits_issuance.entrypoints.import_cards", str(path)],
            env=env,
            capture_output=True,
            check=False,
        )
        imported_at = time.monotonic()
        if finished.returncode != 0:
            raise RuntimeError(finished.stderr.decode()[-2000:])
        summary = finished.stdout.decode().strip().splitlines()[0]
        visible_at = asyncio.run(_visible(stack.url("rights"), sample, started + 900))
        bare = asyncio.run(_bare_produce(f"{run_id}-bare", lines))
    finally:
        stack.stop()
        cleanup(run_id)
    import_seconds = imported_at - started
    visible_seconds = visible_at - started
    say(
        f"import: {summary}; imported in {import_seconds:.1f} s, visible in {visible_seconds:.1f} s"
    )
    return {
        "benchmark": "import",
        **stamp(),
        "setup": {"cards": cards, "bad_fraction": 0.01, "sample": len(sample), "summary": summary},
        "figure": {
            "import_seconds": round(import_seconds, 1),
            "visible_seconds": round(visible_seconds, 1),
            "cards_per_second": round(cards / visible_seconds),
            "bare_produce_seconds": round(bare, 1),
            "ratio_to_bare": round(visible_seconds / bare, 1),
        },
        "target": {"visible_seconds": 60},
    }


def _key(raw: bytes) -> bytes:
    """The card number of a line, or the line itself for the broken lines of the export."""
    card = _loads(raw)
    number = card.get("card_number") if isinstance(card, dict) else None
    return str(number).encode() if number else raw[:64]


def _loads(raw: bytes) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return loaded


def _importable(card: dict[str, Any]) -> bool:
    from permits_issuance.domain.earlier_cards import LineRejectedError, parse_line

    try:
        parse_line(orjson.dumps(card))
    except LineRejectedError:
        return False
    return True
