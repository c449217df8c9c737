"""Verification served by the rights service as it runs (the HTTP server inside its Faust
worker) against the same API in a process of its own (`rights_api_alone.py`), and both against
the bare reference server, rounds alternating in one run, every answer checked.

It measures what moving the API out of the worker's process would gain before anyone builds
it; it writes no results file (`python -m bench.api_alone [--rounds N] [--requests N]`, not
part of `all`) and prints the medians and every round as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import date, timedelta
from typing import Any

from bench.audit_cost import _stack
from bench.common import (
    cleanup,
    create_topic,
    free_port,
    median,
    new_run_id,
    ratio,
    reference_server,
    say,
)
from bench.register import card_numbers
from bench.verify import AGENCY, _get, _write_register, build_register, presented


def _alone_stack(run_id: str) -> Any:
    """A stack whose rights process is the API alone, on a port of its own."""
    stack = _stack(run_id)
    rights = stack.components["rights"]
    port = free_port()
    stack.components["rights"] = dataclasses.replace(
        rights,
        argv=(sys.executable, "-m", "bench.rights_api_alone"),
        port=port,
        env={**rights.env, "PERMITS_RIGHTS_PORT": str(port)},
    )
    return stack


def run(rounds: int, cards: int, requests: int) -> dict[str, Any]:
    worker_id, alone_id = new_run_id("inworker"), new_run_id("alone")
    register = build_register(card_numbers(cards), date.today() + timedelta(days=900))
    for run_id in (worker_id, alone_id):
        say(f"api_alone: preloading {cards} cards into {run_id}-rights-register-changelog")
        asyncio.run(_write_register(f"{run_id}-rights-register-changelog", register))
        asyncio.run(create_topic(f"{run_id}-audit"))
    stacks = {"worker": _stack(worker_id), "alone": _alone_stack(alone_id)}
    names = ["reference", *(f"{s} {path}" for s in stacks for path in ("healthz", "verify"))]
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        for stack in stacks.values():
            stack.start(["rights"])
        paths, expected = presented(register, 4096)
        with reference_server() as bare:
            for number in range(rounds):
                figures["reference"].append(_get(bare, ["/healthz"], requests))
                for name, stack in stacks.items():
                    base = stack.url("rights")
                    figures[f"{name} healthz"].append(_get(base, ["/healthz"], requests))
                    figures[f"{name} verify"].append(
                        _get(base, paths, requests, headers=AGENCY, expected=expected)
                    )
                say(
                    f"api_alone round {number + 1}: "
                    + ", ".join(f"{key} {value[-1]['rate']}/s" for key, value in figures.items())
                )
    finally:
        for stack in stacks.values():
            stack.stop()
        cleanup(worker_id)
        cleanup(alone_id)
    reference_rate = median([r["rate"] for r in figures["reference"]])
    summary = {
        name: {
            "requests_per_second": median([r["rate"] for r in rows]),
            "p50_ms": median([r["p50_ms"] for r in rows]),
            "p99_ms": median([r["p99_ms"] for r in rows]),
            "ratio_to_reference": ratio(median([r["rate"] for r in rows]), reference_rate),
            "answers_wrong": sum(r.get("answers", {}).get("wrong", 0) for r in rows),
            "answers_checked": sum(r.get("answers", {}).get("checked", 0) for r in rows),
        }
        for name, rows in figures.items()
    }
    return {"medians": summary, "rounds": {k: [r["rate"] for r in v] for k, v in figures.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_alone", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds, args.cards, args.requests), indent=2))


if __name__ == "__main__":
    main()
