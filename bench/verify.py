"""Verification: requests/s and p99 of GET /api/v1/verify against the same server's /healthz.

The register is preloaded the way production fills it: records on the rights service's
compacted changelog topic, which it replays at start. Rights runs alone (its Faust agent still
consumes permits.cards.v1 and the backlog there is small); the rate limit is raised so the
figure is the service's, not the token bucket's.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.common import cleanup, make_stack, median, new_run_id, ratio, run_loadgen, say, stamp
from bench.register import card_numbers, produce_register

AGENCY = {"Authorization": "Bearer dev-agency-hotel"}


def _paths(numbers: list[str], count: int) -> list[str]:
    """Presented cards: mostly valid, some wrong names, old issue counts and unknown numbers."""
    chosen = random.Random(7)
    paths = []
    for i in range(count):
        number = numbers[chosen.randrange(len(numbers))]
        query: dict[str, Any] = {"number": number, "name": "陈大文"}
        if i % 10 == 1:
            query["name"] = "CHAN TAI MAN"
        elif i % 10 == 2:
            query["name"] = "李小龍"
        elif i % 10 == 3:
            query["issue_count"] = 1
        elif i % 10 == 4:
            query["number"] = number[:-4] + "0000"
        paths.append("/api/v1/verify?" + urlencode(query))
    return paths


def run(rounds: int = 3, cards: int = 20_000, requests: int = 10_000) -> dict[str, Any]:
    run_id = new_run_id("verify")
    group = f"{run_id}-rights"
    say(f"verify: preloading {cards} cards into {group}-register-changelog")
    numbers = card_numbers(cards)
    asyncio.run(
        produce_register(f"{group}-register-changelog", numbers, date.today() + timedelta(days=900))
    )
    stack = make_stack(
        run_id,
        {"PERMITS_VERIFY_RATE_PER_SECOND": "1000000", "PERMITS_VERIFY_BURST": "1000000"},
    )
    health: list[dict[str, Any]] = []
    verify: list[dict[str, Any]] = []
    try:
        stack.start(["rights"])
        base = stack.url("rights")
        paths = _paths(numbers, 4096)
        for number in range(rounds):
            health.append(
                run_loadgen(
                    {
                        "base_url": base,
                        "kind": "get",
                        "paths": ["/healthz"],
                        "requests": requests,
                        "concurrency": 64,
                    }
                )
            )
            verify.append(
                run_loadgen(
                    {
                        "base_url": base,
                        "kind": "get",
                        "paths": paths,
                        "headers": AGENCY,
                        "requests": requests,
                        "concurrency": 64,
                    }
                )
            )
            say(
                f"verify round {number + 1}: healthz {health[-1]['rate']}/s, verify "
                f"{verify[-1]['rate']}/s p99 {verify[-1]['p99_ms']} ms {verify[-1]['statuses']}"
            )
    finally:
        stack.stop()
        cleanup(run_id)
    rate = median([r["rate"] for r in verify])
    health_rate = median([r["rate"] for r in health])
    return {
        "benchmark": "verify",
        **stamp(),
        "setup": {
            "cards": cards,
            "concurrency": 64,
            "requests_per_round": requests,
            "rounds": rounds,
            "mix": "60% valid, 10% latin name, 10% wrong name, 10% issue_count=1, "
            "10% unknown number",
        },
        "figure": {
            "requests_per_second": rate,
            "p50_ms": median([r["p50_ms"] for r in verify]),
            "p99_ms": median([r["p99_ms"] for r in verify]),
            "healthz_per_second": health_rate,
            "healthz_p99_ms": median([r["p99_ms"] for r in health]),
            "ratio_to_healthz": ratio(rate, health_rate),
        },
        "target": {"requests_per_second": 2000, "p99_ms": 20},
        "rounds": {"verify": verify, "healthz": health},
    }
