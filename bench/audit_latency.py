"""Where an audited verification's latency goes: GET /api/v1/verify at 64 connections against
the rights service with its audit trail timed in its own process (`bench/rights_traced.py`).

Per round (the register, mix and answer checks of `bench verify`): the client's rate, p50 and
p99; each request's wait for its audit entry, split by whether a batch was already in flight
when the entry arrived; per batch its size, its first entry's wait before the batch started
and the time from its start to the broker's acknowledgement; the event loop's lag, its stalls
over 20 ms and the garbage collector's pauses; the service's CPU time per request.

    python -m bench.audit_latency [--rounds 3] [--requests 10000]

Prints JSON; saves nothing (not part of `all`). With `BENCH_PROFILE_SECONDS=N`, py-spy samples
the service for the first N seconds of the rounds (200 a second, `.local/profiles/`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.audit_cost import variant_stack
from bench.common import cleanup, create_topic, new_run_id, say, start_profilers
from bench.register import card_numbers
from bench.verify import AGENCY, _get, _write_register, build_register, presented


def _quantiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """p50, p99, max and mean (ms by default) of a list; zeros for an empty one."""
    if not values:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * scale, 3)

    return {
        "n": len(ordered),
        "p50": at(0.5),
        "p99": at(0.99),
        "max": round(ordered[-1] * scale, 3),
        "mean": round(sum(ordered) / len(ordered) * scale, 3),
    }


def summarise(trace: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The figures of what the traced process recorded since `seen` (advanced in place)."""
    cpu = trace.pop("cpu_seconds")
    cpu_used, seen["cpu_seconds"] = cpu - seen.get("cpu_seconds", 0.0), cpu
    fresh = {name: rows[seen.get(name, 0) :] for name, rows in trace.items()}
    seen.update({name: len(rows) for name, rows in trace.items()})
    waits = fresh["request_wait"]
    behind = [wait for wait, in_flight in waits if in_flight]
    batches = fresh["batch"]
    gc_pauses = fresh["gc"]
    return {
        "cpu_us_per_request": round(cpu_used / len(waits) * 1e6, 1) if waits else 0,
        "audit_wait_ms": _quantiles([wait for wait, _ in waits]),
        "arrived_while_batch_in_flight": round(len(behind) / len(waits), 3) if waits else 0,
        "audit_wait_behind_in_flight_ms": _quantiles(behind),
        "audit_wait_flusher_idle_ms": _quantiles([w for w, in_flight in waits if not in_flight]),
        "batches": len(batches),
        "batch_entries": _quantiles([b[0] for b in batches], scale=1),
        "batch_first_entry_wait_ms": _quantiles([b[1] for b in batches]),
        "batch_sent_and_acknowledged_ms": _quantiles([b[2] for b in batches]),
        "loop_lag_ms": _quantiles(fresh["loop_lag"]),
        "stalls_over_20ms": fresh["stalls"],
        "gc_pauses": {
            f"gen{generation}": _quantiles([s for g, s in gc_pauses if g == generation])
            for generation in (0, 1, 2)
        },
    }


def _read_trace(path: Path) -> dict[str, Any]:
    """Ask the traced process for its trace and read it."""
    wanted = Path(f"{path}.want")
    wanted.touch()
    deadline = time.monotonic() + 30
    while wanted.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))


def run(rounds: int = 3, cards: int = 20_000, requests: int = 10_000) -> dict[str, Any]:
    run_id = new_run_id("audit-latency")
    register = build_register(card_numbers(cards), date.today() + timedelta(days=900))
    say(f"audit latency: preloading {cards} cards into {run_id}-rights-register-changelog")
    asyncio.run(_write_register(f"{run_id}-rights-register-changelog", register))
    asyncio.run(create_topic(f"{run_id}-audit"))
    trace_file = Path(tempfile.mkdtemp()) / "trace.json"
    stack = variant_stack(run_id, "bench.rights_traced", {"BENCH_TRACE_FILE": str(trace_file)})
    results: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}
    try:
        stack.start(["rights"])
        paths, expected = presented(register, 4096)
        summarise(_read_trace(trace_file), seen)
        profilers = start_profilers(stack, ["rights"], run_id, rate=200)
        for number in range(rounds):
            client = _get(stack.url("rights"), paths, requests, headers=AGENCY, expected=expected)
            inside = summarise(_read_trace(trace_file), seen)
            wall = requests / client["rate"]
            results.append(
                {
                    "rate": client["rate"],
                    "server_busy_share": round(
                        inside["cpu_us_per_request"] * requests / 1e6 / wall, 3
                    ),
                    "p50_ms": client["p50_ms"],
                    "p99_ms": client["p99_ms"],
                    "wrong": client["answers"]["wrong"],
                    **inside,
                }
            )
            say(f"audit latency round {number + 1}: {json.dumps(results[-1])}")
        for profiler in profilers:
            profiler.wait()
    finally:
        stack.stop()
        cleanup(run_id)
    return {"benchmark": "audit_latency", "rounds": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--cards", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds, args.cards, args.requests), indent=1))


if __name__ == "__main__":
    main()
