"""Intake: accepted applications/s and p50/p99 at 64 clients, against the same server's /healthz
and the bare FastAPI reference server (bench/reference.py).

Only intake runs (it needs the broker and the store, not the other services: its outbox still
publishes every `application.accepted`). Rounds alternate /healthz and POST /applications so a
burst of noise on the shared machine hits both; the medians of the rounds are quoted. The CPU
that intake, the broker and the store used during the submission rounds, per submission, says
where the rate is spent (the store's and broker's figures hold on a quiet machine or with an
instance of one's own, see `shared_cpu_seconds`). With BENCH_PROFILE_SECONDS set, intake is
sampled from the first submission round on (`start_profilers`).
"""

from __future__ import annotations

import random
from typing import Any

from bench.common import (
    cleanup,
    cpu_seconds,
    make_stack,
    median,
    new_run_id,
    ratio,
    reference_server,
    run_loadgen,
    say,
    shared_cpu_seconds,
    stamp,
    start_profilers,
)

CLERK = {"Authorization": "Bearer dev-clerk"}
WARMUP = 64
"""Submissions of each round sent before the clock starts (counted in the CPU per submission)."""


def run(rounds: int = 3, requests: int = 3000, health_requests: int = 6000) -> dict[str, Any]:
    run_id = new_run_id("intake")
    stack = make_stack(run_id)
    say(f"intake: starting the service ({run_id})")
    reference: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    submit: list[dict[str, Any]] = []
    cpu_used: dict[str, float] = {}

    def healthz(base_url: str) -> dict[str, Any]:
        return run_loadgen(
            {
                "base_url": base_url,
                "kind": "get",
                "paths": ["/healthz"],
                "requests": health_requests,
                "concurrency": 64,
            }
        )

    try:
        stack.start(["intake"])
        base = stack.url("intake")
        with reference_server() as bare:
            for number in range(rounds):
                reference.append(healthz(bare))
                health.append(healthz(base))
                if number == 0:
                    profilers = start_profilers(stack, ["intake"], run_id, rate=100)
                before = {**cpu_seconds(stack), **shared_cpu_seconds()}
                submit.append(
                    run_loadgen(
                        {
                            "base_url": base,
                            "kind": "applications",
                            "headers": CLERK,
                            "requests": requests,
                            "concurrency": 64,
                            "permit_seed": random.randrange(10**8),
                            "warmup": WARMUP,
                        }
                    )
                )
                after = {**cpu_seconds(stack), **shared_cpu_seconds()}
                for name, used in before.items():
                    if name in after:
                        cpu_used[name] = cpu_used.get(name, 0.0) + after[name] - used
                say(
                    f"intake round {number + 1}: reference {reference[-1]['rate']}/s, healthz "
                    f"{health[-1]['rate']}/s, applications {submit[-1]['rate']}/s p99 "
                    f"{submit[-1]['p99_ms']} ms statuses {submit[-1]['statuses']}"
                )
        for profiler in profilers:
            profiler.wait()
    finally:
        stack.stop()
        cleanup(run_id)
    submitted = max(sum(r["sent"] + WARMUP for r in submit), 1)
    cpu_ms = {name: round(used * 1000 / submitted, 3) for name, used in cpu_used.items()}
    say(f"intake CPU ms per submission: {cpu_ms}")
    rate = median([r["rate"] for r in submit])
    health_rate = median([r["rate"] for r in health])
    reference_rate = median([r["rate"] for r in reference])
    return {
        "benchmark": "intake",
        **stamp(),
        "setup": {
            "concurrency": 64,
            "requests_per_round": requests,
            "health_requests_per_round": health_requests,
            "rounds": rounds,
        },
        "figure": {
            "accepted_per_second": rate,
            "p50_ms": median([r["p50_ms"] for r in submit]),
            "p99_ms": median([r["p99_ms"] for r in submit]),
            "healthz_per_second": health_rate,
            "ratio_to_healthz": ratio(rate, health_rate),
            "healthz_p99_ms": median([r["p99_ms"] for r in health]),
            "reference_per_second": reference_rate,
            "ratio_to_reference": ratio(rate, reference_rate),
            "healthz_ratio_to_reference": ratio(health_rate, reference_rate),
        },
        "cpu_ms_per_submission": cpu_ms,
        "target": {"accepted_per_second": 500, "p99_ms": 100},
        "rounds": {"applications": submit, "healthz": health, "reference": reference},
    }
