"""Recovery: rebuild the rights register of 1,000,000 cards from its compacted changelog topic.

The records are written in the service's own format (`encode_record`: the verification entry
and the card's history with its printed details, one per card number, the same topic spec) to a
topic of this run. Each repetition runs in a fresh process (so the peak RSS is the rebuild's):
the real `RegisterReplica` replays the topic into `RegisterRecords` until `ready`; the baseline
is a bare aiokafka consumer with the same fetch settings that only counts the records. Both read
the same topic, alternately.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.common import (
    KAFKA,
    REPO,
    delete_topics,
    median,
    new_run_id,
    ratio,
    say,
    stamp,
)


def card_numbers(count: int) -> list[str]:
    """Distinct valid HK permit numbers: 999 sequences per birth date."""
    from permits_common.domain.permit_number import generate
    from permits_common.domain.regions import Region

    first = date(1950, 1, 1)
    return [
        generate(Region.HK, first + timedelta(days=i // 999), i % 999 + 1).value
        for i in range(count)
    ]


async def produce_register(
    topic: str, numbers: list[str], valid_until: date, entries: list[Any] | None = None
) -> float:
    """Write one entry per card number, as the rights service would; seconds taken.

    Without `entries` every card is active (issue 1, 2 or 3) under the names 陈大文 / CHAN TAI
    MAN; otherwise `entries[i]` (a `RegisterEntry`) is written for `numbers[i]`.
    """
    from aiokafka import AIOKafkaProducer

    from permits_common.kafka import ensure_topics
    from permits_common.settings import CommonSettings
    from permits_rights.adapters.register_changelog import encode_record, register_topic_spec
    from permits_rights.domain.holder import CardHistory

    await ensure_topics(CommonSettings(kafka_bootstrap=KAFKA), [register_topic_spec(topic)])
    details = {
        "name": "陈大文",
        "name_latin": "CHAN TAI MAN",
        "sex": "M",
        "birth_date": "1990-01-01",
        "region": "HK",
        "valid_from": "2026-11-01",
        "valid_until": valid_until.isoformat(),
        "issuing_authority": "济南市公安局历下分局",
        "district": "历下区",
        "address": "历下区科院路6号",
    }
    at = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    try:
        pending = []
        for i, number in enumerate(numbers):
            history = CardHistory(number)
            if entries is not None:
                entry = entries[i]
            else:
                for issue in range(1, 2 + i % 3):
                    history.record_issued(issue, details, at)
                entry = history.entry()
                assert entry is not None
            value = encode_record(entry, history)
            pending.append(await producer.send(topic, value, key=number.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def _replay(topic: str) -> dict[str, Any]:
    """The service's own rebuild path, timed from construction to `ready`."""
    from permits_common.settings import CommonSettings
    from permits_rights.adapters.register_changelog import RegisterRecords, RegisterReplica
    from permits_rights.domain.register import RegisterIndex

    index = RegisterIndex()
    started = time.perf_counter()
    replica = RegisterReplica(CommonSettings(kafka_bootstrap=KAFKA), topic, RegisterRecords(index))
    task = asyncio.create_task(replica.run())
    await replica.ready.wait()
    seconds = time.perf_counter() - started
    replica.stop()
    await asyncio.wait_for(task, 30)
    return {"seconds": seconds, "cards": len(index), "internal_seconds": replica.rebuild_seconds}


async def _bare(topic: str) -> dict[str, Any]:
    """Read every record of the topic and do nothing with it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    started = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    described = await admin.describe_topics([topic])
    await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records = 0
        behind = {tp for tp in partitions if end[tp] > 0}
        while behind:
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for tp, batch in batches.items():
                records += len(batch)
                if batch[-1].offset + 1 >= end[tp]:
                    behind.discard(tp)
    finally:
        await consumer.stop()
    return {"seconds": time.perf_counter() - started, "cards": records}


def _measure(mode: str, topic: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.register", mode, topic],
        capture_output=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{mode} failed: {completed.stderr.decode()[-2000:]}")
    # The service's logger writes to stdout too: the result is the last line.
    result: dict[str, Any] = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    return result


def run(rounds: int = 3, cards: int = 1_000_000) -> dict[str, Any]:
    run_id = new_run_id("register")
    topic = f"{run_id}-register-changelog"
    say(f"register: generating {cards:,} card numbers")
    numbers = card_numbers(cards)
    say(f"register: producing {cards:,} records to {topic}")
    produce_seconds = asyncio.run(produce_register(topic, numbers, date(2031, 1, 1)))
    del numbers
    replays: list[dict[str, Any]] = []
    bares: list[dict[str, Any]] = []
    try:
        for number in range(rounds):
            bares.append(_measure("bare", topic))
            replays.append(_measure("replay", topic))
            say(
                f"register round {number + 1}: rebuild {replays[-1]['seconds']:.1f} s "
                f"({replays[-1]['cards']:,} cards, {replays[-1]['peak_rss_mib']:.0f} MiB), "
                f"bare read {bares[-1]['seconds']:.1f} s"
            )
    finally:
        asyncio.run(delete_topics([topic]))
    seconds = median([r["seconds"] for r in replays])
    bare = median([r["seconds"] for r in bares])
    return {
        "benchmark": "register",
        **stamp(),
        "setup": {
            "cards": cards,
            "rounds": rounds,
            "partitions": 4,
            "produce_seconds": round(produce_seconds, 1),
        },
        "figure": {
            "rebuild_seconds": round(seconds, 2),
            "cards_per_second": round(cards / seconds),
            "peak_rss_mib": median([r["peak_rss_mib"] for r in replays]),
            "bare_seconds": round(bare, 2),
            "bare_peak_rss_mib": median([r["peak_rss_mib"] for r in bares]),
            "ratio_to_bare": ratio(seconds, bare),
        },
        "target": {"rebuild_seconds": 60},
        "rounds": {"rebuild": replays, "bare": bares},
    }


if __name__ == "__main__":
    mode, name = sys.argv[1], sys.argv[2]
    outcome = asyncio.run(_replay(name) if mode == "replay" else _bare(name))
    outcome["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write("\n" + json.dumps(outcome) + "\n")
