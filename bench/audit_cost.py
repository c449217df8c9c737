"""What the audit trail costs verification: GET /api/v1/verify of the rights service as it
runs (each answer waits until its `audit.access` entry is on Kafka; entries of concurrent
requests share a producer batch) against the same code with the entries left out
(`bench/rights_unaudited.py`), in the same run.

Both processes hold the same register (written to each one's changelog topic, as in the
verification benchmark), get the same requests at 64 connections, and take turns round by
round; the medians of the rounds are compared. Every answer is checked against the register.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import date, timedelta
from typing import Any

from bench.common import (
    cleanup,
    create_topic,
    free_port,
    make_stack,
    median,
    new_run_id,
    ratio,
    say,
    stamp,
)
from bench.register import card_numbers
from bench.verify import AGENCY, _get, _write_register, build_register, presented


def _stack(run_id: str) -> Any:
    """Rights with the rate limit raised; its audit entries go to a topic of the run's own,
    so the shared trail never sees them."""
    return make_stack(
        run_id,
        {
            "PERMITS_VERIFY_RATE_PER_SECOND": "1000000",
            "PERMITS_VERIFY_BURST": "1000000",
            "PERMITS_AUDIT_TOPIC": f"{run_id}-audit",
        },
    )


def variant_stack(
    run_id: str, module: str = "bench.rights_unaudited", extra_env: dict[str, str] | None = None
) -> Any:
    """A stack whose rights process is a benchmark variant of the service (`module`; the bare
    path by default), on a port of its own."""
    stack = _stack(run_id)
    rights = stack.components["rights"]
    port = free_port()
    stack.components["rights"] = dataclasses.replace(
        rights,
        argv=(sys.executable, "-m", module),
        port=port,
        env={**rights.env, "PERMITS_RIGHTS_PORT": str(port), **(extra_env or {})},
    )
    return stack


def run(rounds: int = 3, cards: int = 20_000, requests: int = 10_000) -> dict[str, Any]:
    audited_id, bare_id = new_run_id("audit"), new_run_id("audit-bare")
    register = build_register(card_numbers(cards), date.today() + timedelta(days=900))
    for run_id in (audited_id, bare_id):
        say(f"audit: preloading {cards} cards into {run_id}-rights-register-changelog")
        asyncio.run(_write_register(f"{run_id}-rights-register-changelog", register))
    asyncio.run(create_topic(f"{audited_id}-audit"))
    audited = _stack(audited_id)
    bare = variant_stack(bare_id)
    with_audit: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    try:
        audited.start(["rights"])
        bare.start(["rights"])
        paths, expected = presented(register, 4096)
        for number in range(rounds):
            without.append(
                _get(bare.url("rights"), paths, requests, headers=AGENCY, expected=expected)
            )
            with_audit.append(
                _get(audited.url("rights"), paths, requests, headers=AGENCY, expected=expected)
            )
            say(
                f"audit round {number + 1}: without {without[-1]['rate']}/s p99 "
                f"{without[-1]['p99_ms']} ms, with {with_audit[-1]['rate']}/s p99 "
                f"{with_audit[-1]['p99_ms']} ms {with_audit[-1]['statuses']}, wrong answers "
                f"{without[-1]['answers']['wrong']} / {with_audit[-1]['answers']['wrong']}"
            )
    finally:
        audited.stop()
        bare.stop()
        cleanup(audited_id)
        cleanup(bare_id)
    rate = median([r["rate"] for r in with_audit])
    bare_rate = median([r["rate"] for r in without])
    return {
        "benchmark": "audit",
        **stamp(),
        "setup": {
            "cards": cards,
            "concurrency": 64,
            "requests_per_round": requests,
            "rounds": rounds,
            "mix": "as in the verification benchmark",
        },
        "figure": {
            "requests_per_second": rate,
            "p50_ms": median([r["p50_ms"] for r in with_audit]),
            "p99_ms": median([r["p99_ms"] for r in with_audit]),
            "unaudited_per_second": bare_rate,
            "unaudited_p50_ms": median([r["p50_ms"] for r in without]),
            "unaudited_p99_ms": median([r["p99_ms"] for r in without]),
            "ratio_to_unaudited": ratio(rate, bare_rate),
            "answers_checked": sum(r["answers"]["checked"] for r in with_audit + without),
            "answers_wrong": sum(r["answers"]["wrong"] for r in with_audit + without),
        },
        "target": {"ratio_to_unaudited": None},
        "rounds": {"audited": with_audit, "unaudited": without},
    }
