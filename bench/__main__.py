"""python -m bench [intake|pipeline|verify|deadlines|register|all|report] [--quick]

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

ORDER = ("intake", "verify", "pipeline", "deadlines", "register")


def _runner(name: str, quick: bool) -> Callable[[], dict[str, Any]]:
    if name == "intake":
        from bench import intake

        return lambda: intake.run(rounds=1 if quick else 3, requests=500 if quick else 3000)
    if name == "verify":
        from bench import verify

        return lambda: verify.run(rounds=1 if quick else 3)
    if name == "pipeline":
        from bench import pipeline

        return lambda: pipeline.run(rounds=1 if quick else 3, applications=100 if quick else 500)
    if name == "deadlines":
        from bench import deadlines

        return lambda: deadlines.run(
            rounds=1 if quick else 3, count=100_000 if quick else 1_000_000
        )
    if name == "register":
        from bench import register

        return lambda: register.run(rounds=1 if quick else 3, cards=100_000 if quick else 1_000_000)
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", nargs="?", default="all", choices=[*ORDER, "all", "report"])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one round: checks the harness only"
    )
    args = parser.parse_args(argv)
    names = ORDER if args.name == "all" else () if args.name == "report" else (args.name,)
    failed = []
    for name in names:
        try:
            result = _runner(name, args.quick)()
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
