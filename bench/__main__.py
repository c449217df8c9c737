"""python -m bench [intake|pipeline|verify|deadlines|register|store|import|audit|all|report]
                 [--quick]
                 [--rounds N] [--size N]

Each benchmark writes bench/results/<name>.json; afterwards the table in docs/benchmarks.md is
regenerated from every results file present.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bench.common import say, write_result
from bench.report import write_report

ORDER = ("intake", "verify", "pipeline", "deadlines", "register", "store", "import", "audit")


SIZES = {  # rounds, size per round (requests, applications, deadlines or cards)
    "intake": (3, 3000),
    "verify": (3, 10_000),
    "pipeline": (3, 500),
    "deadlines": (3, 1_000_000),
    "register": (3, 1_000_000),
    "store": (3, 20_000),
    "import": (1, 100_000),
    "audit": (3, 10_000),
}
QUICK = {
    "intake": 500,
    "verify": 2000,
    "pipeline": 50,
    "deadlines": 100_000,
    "register": 100_000,
    "store": 2000,
    "import": 5000,
    "audit": 2000,
}


def _runner(name: str, rounds: int, size: int) -> Callable[[], dict[str, Any]]:
    if name == "intake":
        from bench import intake

        return lambda: intake.run(rounds=rounds, requests=size)
    if name == "verify":
        from bench import verify

        return lambda: verify.run(rounds=rounds, requests=size)
    if name == "pipeline":
        from bench import pipeline

        return lambda: pipeline.run(rounds=rounds, applications=size)
    if name == "deadlines":
        from bench import deadlines

        return lambda: deadlines.run(rounds=rounds, count=size)
    if name == "register":
        from bench import register

        return lambda: register.run(rounds=rounds, cards=size)
    if name == "store":
        from bench import store

        return lambda: store.run(rounds=rounds, documents=size)
    if name == "import":
        from bench import import_cards

        return lambda: import_cards.run(cards=size, rounds=rounds)
    if name == "audit":
        from bench import audit_cost

        return lambda: audit_cost.run(rounds=rounds, requests=size)
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", nargs="?", default="all", choices=[*ORDER, "all", "report"])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one round: checks the harness only"
    )
    parser.add_argument("--rounds", type=int, help="repetitions (default 3)")
    parser.add_argument(
        "--size", type=int, help="requests, applications, deadlines, cards or documents"
    )
    args = parser.parse_args(argv)
    names = ORDER if args.name == "all" else () if args.name == "report" else (args.name,)
    failed = []
    for name in names:
        try:
            rounds, size = SIZES[name]
            if args.quick:
                rounds, size = 1, QUICK[name]
            result = _runner(name, args.rounds or rounds, args.size or size)()
        except Exception as exc:
            say(f"{name} failed: {exc!r}")
            failed.append(name)
            continue
        if args.quick:
            say(f"{name} (quick, not saved): {result['figure']}")
            continue
        path = write_result(name, result)
        say(f"{name}: {result['figure']} -> {path.name}")
    write_report()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
