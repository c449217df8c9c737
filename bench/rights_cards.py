"""The rights service's card-event handling on its own: how many card events a second the
register writer (`HolderUpdates.handle`) takes in, in the batches the cards agent hands it.

The import benchmark measures the whole path (import, cards topic, rights, verification); this
one isolates the step that limited it, so a change to it can be measured in seconds and
profiled. The events are the ones the import publishes for a generated export file; the writer
publishes its feed events, audit entries and register records to the real broker (audit and
register on the run's own topics), exactly as in the service.

    python -m bench.rights_cards [--cards N] [--batch N] [--rounds N] [--profile FILE]

The cards agent hands over up to 1,000 events at a time (`--batch`); the service used 200.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from bench.common import cleanup, create_topic, database_names, median, new_run_id, say
from permits_common.events.envelope import Event
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.mongo import mongo_client
from permits_issuance.domain.earlier_cards import LineRejectedError, parse_line
from permits_issuance.service.earlier_cards import CardImport
from permits_issuance.simulator.earlier_export import write
from permits_rights.adapters.policy_file import load_policies
from permits_rights.adapters.register_changelog import RegisterRecords
from permits_rights.adapters.store import DeliveryLog
from permits_rights.config import RightsSettings
from permits_rights.domain.register import RegisterIndex
from permits_rights.service.holder_updates import RECORD_BATCH_BYTES, SOURCE, HolderUpdates


def card_events(cards: int) -> list[Event[Any]]:
    """The events the import publishes for a generated file of `cards` lines (valid ones)."""
    path = Path(tempfile.mkdtemp(prefix="bench-rights-cards-")) / "earlier.jsonl"
    write(path, cards, bad=0.0, seed=random.randrange(10**6))
    publisher = EventPublisher(RightsSettings(), "issuance")
    importer = CardImport(cast(Any, None), publisher)
    events: list[Event[Any]] = []
    for raw in path.read_bytes().splitlines():
        try:
            card = parse_line(raw)
        except LineRejectedError:
            continue
        events += importer._events(card)
    return events


async def _one_round(
    run_id: str,
    number: int,
    events: list[Event[Any]],
    batch: int,
    batch_bytes: int,
    profile: cProfile.Profile | None,
) -> float:
    """Seconds for a fresh register writer to handle every event, batch by batch."""
    settings = RightsSettings()
    await ensure_topics(settings)
    register_topic = f"{run_id}-register-{number}"
    await create_topic(register_topic)
    publisher = EventPublisher(settings, SOURCE, max_batch_bytes=batch_bytes)
    await publisher.start()
    mongo = mongo_client(settings)
    updates = HolderUpdates(
        deliveries=DeliveryLog(mongo[database_names(run_id)["rights"]]),
        publisher=publisher,
        policies=load_policies(),
        webhook_agencies=frozenset(),
        records=RegisterRecords(RegisterIndex()),
        register_topic=register_topic,
        wake_webhooks=lambda _agency: None,
        audit_topic=settings.audit_topic,
    )
    try:
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            await updates.handle(events[start : start + batch])
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
    finally:
        await publisher.stop()
        await mongo.close()
    return elapsed


def _in_own_namespace(run_id: str) -> int:
    """Run this benchmark again with the run's topic namespace, which the topic catalog reads
    when it is imported: feeds and audit entries then go to the run's own topics, never the
    shared ones (tests read those from their start)."""
    env = {**os.environ, "PERMITS_TOPIC_NAMESPACE": f"{run_id}.", "BENCH_RUN_ID": run_id}
    try:
        return subprocess.run(
            [sys.executable, "-m", "bench.rights_cards", *sys.argv[1:]], env=env, check=False
        ).returncode
    finally:
        cleanup(run_id)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rights_cards", description=__doc__)
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000, help="events per handle() call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write cProfile stats of the last round here")
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=RECORD_BATCH_BYTES,
        help="record batch size of the publisher (the service's by default)",
    )
    args = parser.parse_args()
    run_id = os.environ.get("BENCH_RUN_ID")
    if run_id is None:
        return _in_own_namespace(new_run_id("rcards"))
    events = card_events(args.cards)
    timings = []
    for number in range(args.rounds):
        profile = cProfile.Profile() if args.profile and number == args.rounds - 1 else None
        timings.append(
            asyncio.run(_one_round(run_id, number, events, args.batch, args.batch_bytes, profile))
        )
        if profile is not None:
            profile.dump_stats(args.profile)
    seconds = median(timings)
    say(
        f"rights cards: {len(events)} card events of {args.cards} cards in batches of "
        f"{args.batch}, record batches of {args.batch_bytes:,} bytes: median {seconds:.2f} s "
        f"({len(events) / seconds:,.0f} events/s) "
        f"over {[round(t, 2) for t in timings]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
