"""Pipeline: applications/s from submission to card issued, agency feeds written and applicant
notified, through all four services, against a bare aiokafka chain of the same hops.

The whole stack runs (simulators included; the production centre answers at once, quiet hours
off, the SMS limit raised). Applications are submitted to intake by the load generator (64
connections); a tracker in this process reads the public topics from their end offsets and
marks an application done when all three happened: `card.issued` for it on permits.cards.v1,
an `active` holder.status for its card on every feed agency's topic, and `notification.sent`
of its `application_ready` message on permits.notifications.v1. Throughput = applications /
(last done - first submission); latency = done - intake's 201. Every service writes its store
profile, and the result reports the store commands per application of each service.

The bare chain has the same shape: source -> applications hop -> a forwarder producing the
card (cards hop) and the ready event -> a rights-like forwarder fanning out to the feed agencies
-> a notify-like forwarder producing the notification; record sizes are the real events' mean
sizes seen by the tracker. Each forwarder is its own process, like each service.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import broker_probe
from bench.common import (
    KAFKA,
    LOGS,
    REPO,
    cleanup,
    cpu_seconds,
    delete_topics,
    make_stack,
    median,
    new_run_id,
    percentile,
    ratio,
    run_loadgen,
    say,
    shared_cpu_seconds,
    stamp,
    start_profilers,
)

CLERK = {"Authorization": "Bearer dev-clerk"}
ENV = {
    "PERMITS_PRODUCTION_SIMULATOR_DELAY_SECONDS": "0",
    "PERMITS_QUIET_HOURS_START": "00:00",
    "PERMITS_QUIET_HOURS_END": "00:00",
    "PERMITS_SMS_PER_RECIPIENT_PER_HOUR": "100000",
    "PERMITS_VERIFY_RATE_PER_SECOND": "100000",
    "PERMITS_VERIFY_BURST": "100000",
}


def feed_topics() -> list[str]:
    from permits_common.domain.agencies import Agency
    from permits_common.events.topics import rights_topic

    return [rights_topic(agency) for agency in Agency if agency is not Agency.HMT_OFFICE]


@dataclass
class Progress:
    """What the tracker has seen, per application."""

    feeds: int
    card_of: dict[str, str] = field(default_factory=dict)
    app_of_card: dict[str, str] = field(default_factory=dict)
    feeds_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notified: set[str] = field(default_factory=set)
    done_at: dict[str, float] = field(default_factory=dict)
    stage_at: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def check(self, application_id: str | None, now: float) -> None:
        if application_id is None or application_id in self.done_at:
            return
        card = self.card_of.get(application_id)
        if (
            card is not None
            and application_id in self.notified
            and len(self.feeds_seen[card]) >= self.feeds
        ):
            self.done_at[application_id] = now


async def track(progress: Progress, stop: asyncio.Event, started: asyncio.Event) -> None:
    """Follow the public topics from their current end until told to stop."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from permits_common.events.topics import APPLICATIONS, CARDS, NOTIFICATIONS

    topics = [APPLICATIONS, CARDS, NOTIFICATIONS, *feed_topics()]
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    described = await admin.describe_topics(topics)
    await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        started.set()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for tp, records in batches.items():
                for record in records:
                    _observe(progress, tp.topic, record.value or b"{}", now)
    finally:
        await consumer.stop()


def _observe(progress: Progress, topic: str, value: bytes, now: float) -> None:
    event = orjson.loads(value)
    kind = event.get("type", "")
    data = event.get("data") or {}
    if kind == "permits.card.issued":
        application_id = str(data["application_id"])
        progress.card_of[application_id] = data["card_number"]
        progress.stage_at[application_id].setdefault("card_issued", now)
        progress.app_of_card[data["card_number"]] = application_id
        progress.sizes["card.issued"].append(len(value))
        progress.check(application_id, now)
    elif kind == "permits.holder.status" and data.get("status") == "active":
        card = data["card_number"]
        progress.feeds_seen[card].add(topic)
        if len(progress.feeds_seen[card]) == progress.feeds and card in progress.app_of_card:
            progress.stage_at[progress.app_of_card[card]].setdefault("feeds_written", now)
        progress.sizes["holder.status"].append(len(value))
        progress.check(progress.app_of_card.get(card), now)
    elif kind == "permits.notification.sent" and data.get("message_type") == "application_ready":
        progress.notified.add(data["application_id"])
        progress.stage_at[data["application_id"]].setdefault("notified", now)
        progress.sizes["notification.sent"].append(len(value))
        progress.check(data["application_id"], now)
    elif kind in ("permits.application.accepted", "permits.application.ready"):
        progress.sizes[kind.removeprefix("permits.")].append(len(value))


async def _submit_and_wait(
    base_url: str, count: int, progress: Progress, wait_seconds: float
) -> dict[str, Any]:
    """One round: submit `count` applications, wait until each is done (or the timeout)."""
    spec = {
        "base_url": base_url,
        "kind": "applications",
        "headers": CLERK,
        "requests": count,
        "concurrency": 64,
        "warmup": 0,
        "keep_ids": True,
        "max_seconds": 120,
        "permit_seed": random.randrange(10**8),
    }
    first = time.time()
    submitted = await asyncio.to_thread(run_loadgen, spec)
    ids = {app_id: acked for app_id, acked in submitted.pop("ids")}
    deadline = time.monotonic() + wait_seconds
    # The tracker is another task; polling its dict is the simplest wait.
    while time.monotonic() < deadline and not all(i in progress.done_at for i in ids):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    done = {i: progress.done_at[i] for i in ids if i in progress.done_at}
    last = max(done.values()) if done else time.time()
    latencies = [done[i] - ids[i] for i in done]
    stages = {
        stage: round(
            percentile(
                [
                    progress.stage_at[i][stage] - ids[i]
                    for i in done
                    if stage in progress.stage_at[i]
                ],
                0.5,
            ),
            3,
        )
        for stage in ("card_issued", "feeds_written", "notified")
    }
    unfinished = [i for i in ids if i not in done]
    missing = {
        stage: sum(1 for i in unfinished if stage not in progress.stage_at[i])
        for stage in ("card_issued", "feeds_written", "notified")
    }
    return {
        "p50_seconds_to_stage": stages,
        "unfinished_missing_stage": missing,
        "unfinished_examples": unfinished[:5],
        "submitted": len(ids),
        "done": len(done),
        "seconds": round(last - first, 3),
        "per_second": round(len(done) / (last - first), 1) if done else 0.0,
        "p50_seconds": round(percentile(latencies, 0.5), 3),
        "p99_seconds": round(percentile(latencies, 0.99), 3),
        "intake": submitted,
    }


def store_commands(profile_dir: Path, applications: int) -> dict[str, Any]:
    """Store commands and store time per application, by service, from the store profiles the
    services wrote (`permits_common.store_profile`); `dedup` is the consumers' event-id claims
    (the `processed_events` collection). Warm-up applications are counted in `applications`."""
    per_service: dict[str, dict[str, Any]] = {}
    for path in sorted(profile_dir.glob("permits_*.json")):
        service = path.stem.split("-")[0].removeprefix("permits_")
        row = per_service.setdefault(
            service, {"calls": 0, "seconds": 0.0, "dedup": 0, "shapes": {}}
        )
        for entry in json.loads(path.read_text()):
            row["calls"] += entry["calls"]
            row["seconds"] += entry["seconds"]
            if entry["shape"].startswith("processed_events."):
                row["dedup"] += entry["calls"]
            row["shapes"][entry["shape"]] = row["shapes"].get(entry["shape"], 0) + entry["calls"]
    apps = max(applications, 1)
    report: dict[str, Any] = {"applications": applications, "services": {}}
    for service, row in per_service.items():
        top = sorted(row["shapes"].items(), key=lambda item: -item[1])[:12]
        report["services"][service] = {
            "commands_per_application": round(row["calls"] / apps, 2),
            "dedup_per_application": round(row["dedup"] / apps, 2),
            "store_ms_per_application": round(row["seconds"] * 1000 / apps, 2),
            "top_shapes_per_application": {shape: round(n / apps, 2) for shape, n in top},
        }
    report["commands_per_application"] = round(
        sum(row["calls"] for row in per_service.values()) / apps, 2
    )
    return report


async def _real(
    rounds: int, applications: int
) -> tuple[
    list[dict[str, Any]], dict[str, float], dict[str, Any], dict[str, float], dict[str, Any] | None
]:
    run_id = new_run_id("pipeline")
    profile_dir = LOGS / run_id / "store-profile"
    stack = make_stack(run_id, {**ENV, "PERMITS_MONGO_PROFILE_DIR": str(profile_dir)})
    submitted = 0
    progress = Progress(feeds=len(feed_topics()))
    stop = asyncio.Event()
    tracking = asyncio.Event()
    say(f"pipeline: starting the whole stack ({run_id})")
    results: list[dict[str, Any]] = []
    broker: dict[str, Any] | None = None
    try:
        await asyncio.to_thread(stack.start)
        tracker = asyncio.create_task(track(progress, stop, tracking))
        await tracking.wait()
        # Fresh groups start at the topics' end once assigned, and readiness does not wait for
        # the assignment: warm up until a whole batch goes through.
        for attempt in range(5):
            warm = await _submit_and_wait(stack.url("intake"), 10, progress, 45)
            submitted += warm["submitted"]
            say(f"pipeline warm-up {attempt + 1}: {warm['done']}/{warm['submitted']} done")
            if warm["done"] == warm["submitted"]:
                break
        else:
            raise RuntimeError("warm-up applications did not finish; see the stack logs")
        profilers = start_profilers(
            stack,
            ["intake", "issuance", "rights", "notify", "production-centre", "sms-gateway"],
            run_id,
        )
        broker_before = await asyncio.to_thread(broker_probe.snapshot)
        cpu_before = {**cpu_seconds(stack), **shared_cpu_seconds()}
        for number in range(rounds):
            results.append(await _submit_and_wait(stack.url("intake"), applications, progress, 300))
            submitted += results[-1]["submitted"]
            say(
                f"pipeline round {number + 1}: {results[-1]['done']}/{applications} in "
                f"{results[-1]['seconds']} s = {results[-1]['per_second']}/s, "
                f"p50 {results[-1]['p50_seconds']} s "
                f"(by stage: {results[-1]['p50_seconds_to_stage']})"
            )
        cpu_after = {**cpu_seconds(stack), **shared_cpu_seconds()}
        timed = max(sum(r["submitted"] for r in results), 1)
        broker = broker_probe.per_application(
            broker_before, await asyncio.to_thread(broker_probe.snapshot), timed
        )
        cpu = {
            name: round((cpu_after[name] - before) * 1000 / timed, 2)
            for name, before in cpu_before.items()
            if name in cpu_after
        }
        say(f"CPU ms per application: {cpu}")
        if broker is not None:
            say(f"broker per application: {broker}")
        stop.set()
        await tracker
        for profiler in profilers:
            profiler.wait()
    finally:
        stop.set()
        await asyncio.to_thread(stack.stop)
        await asyncio.to_thread(cleanup, run_id)
    sizes = {kind: sum(v) / len(v) for kind, v in progress.sizes.items() if v}
    commands = store_commands(profile_dir, submitted)
    say(
        "store commands per application: "
        + ", ".join(
            f"{name} {row['commands_per_application']} (dedup {row['dedup_per_application']})"
            for name, row in commands["services"].items()
        )
        + f"; all {commands['commands_per_application']}"
    )
    return results, sizes, commands, cpu, broker


async def _bare(rounds: int, applications: int, sizes: dict[str, float]) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from permits_common.events.topics import TopicSpec
    from permits_common.kafka import ensure_topics
    from permits_common.settings import CommonSettings

    run_id = new_run_id("bare")
    hop = {
        name: f"{run_id}-{name}"
        for name in ("applications", "cards", "ready", "feeds", "notifications")
    }
    await ensure_topics(
        CommonSettings(kafka_bootstrap=KAFKA),
        [TopicSpec(name, "key", "bench hop") for name in hop.values()],
    )
    feeds = len(feed_topics())

    def size(kind: str, default: int) -> int:
        return int(sizes.get(kind, default))

    forwarders = [
        (
            hop["applications"],
            [
                (hop["cards"], size("card.issued", 900), 1),
                (hop["ready"], size("application.ready", 700), 1),
            ],
        ),
        (hop["cards"], [(hop["feeds"], size("holder.status", 500), feeds)]),
        (hop["ready"], [(hop["notifications"], size("notification.sent", 500), 1)]),
    ]
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
            [
                sys.executable,
                "-m",
                "bench.forwarder",
                source,
                f"{run_id}-fwd{i}",
                json.dumps(outputs),
            ],
            cwd=REPO,
        )
        for i, (source, outputs) in enumerate(forwarders)
    ]
    results: list[dict[str, Any]] = []
    consumer = AIOKafkaConsumer(
        hop["feeds"],
        hop["notifications"],
        bootstrap_servers=KAFKA,
        group_id=f"{run_id}-sink",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=2
    )
    await consumer.start()
    await producer.start()
    try:
        payload = b"x" * size("application.accepted", 1500)
        for number in range(rounds + 1):  # the first round warms the chain up
            count = 20 if number == 0 else applications
            keys = [f"{run_id}-{number}-{i}".encode() for i in range(count)]
            seen: dict[bytes, int] = defaultdict(int)
            done: dict[bytes, float] = {}
            sent: dict[bytes, float] = {}
            first = time.time()

            async def source(keys: list[bytes] = keys, sent: dict[bytes, float] = sent) -> None:
                for key in keys:
                    future = await producer.send(hop["applications"], payload, key=key)
                    future.add_done_callback(_stamp_when_acked(sent, key))
                await producer.flush()

            feeding = asyncio.create_task(source())
            deadline = time.monotonic() + 120
            while len(done) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=100, max_records=5000)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        key = record.key or b""
                        seen[key] += 1
                        if seen[key] == feeds + 1:
                            done[key] = now
            await feeding
            if number == 0:
                continue
            last = max(done.values()) if done else time.time()
            latencies = [done[k] - sent[k] for k in done if k in sent]
            results.append(
                {
                    "submitted": count,
                    "done": len(done),
                    "seconds": round(last - first, 3),
                    "per_second": round(len(done) / (last - first), 1) if done else 0.0,
                    "p50_seconds": round(percentile(latencies, 0.5), 3),
                    "p99_seconds": round(percentile(latencies, 0.99), 3),
                }
            )
            say(f"bare round {number}: {len(done)}/{count} = {results[-1]['per_second']}/s")
    finally:
        await producer.stop()
        await consumer.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        await delete_topics(list(hop.values()))
    return results


def _stamp_when_acked(sent: dict[bytes, float], key: bytes) -> Any:
    """Record when the broker acknowledged the source record (the bare chain's 201)."""
    return lambda _future: sent.__setitem__(key, time.time())


def run(rounds: int = 3, applications: int = 500) -> dict[str, Any]:
    real, sizes, commands, cpu, broker = asyncio.run(_real(rounds, applications))
    bare = asyncio.run(_bare(rounds, applications, sizes))
    rate = median([r["per_second"] for r in real])
    bare_rate = median([r["per_second"] for r in bare])
    return {
        "benchmark": "pipeline",
        **stamp(),
        "setup": {
            "applications_per_round": applications,
            "rounds": rounds,
            "concurrency": 64,
            "feed_agencies": len(feed_topics()),
            "mean_event_bytes": {k: round(v) for k, v in sizes.items()},
        },
        "figure": {
            "applications_per_second": rate,
            "p50_seconds": median([r["p50_seconds"] for r in real]),
            "p99_seconds": median([r["p99_seconds"] for r in real]),
            "bare_per_second": bare_rate,
            "ratio_to_bare": ratio(rate, bare_rate),
        },
        "store_commands": commands,
        "cpu_ms_per_application": cpu,
        "broker_per_application": broker,
        "target": {"applications_per_second": 300},
        "rounds": {"pipeline": real, "bare": bare},
    }
