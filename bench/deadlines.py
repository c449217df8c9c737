"""Deadline scan: classify 1,000,000 open deadlines with issuance's own rules, time and memory.

The deadlines are `DeadlineSchedule` objects as issuance stores them (precomputed with
`schedule()` on the real working-day calendar, accepted over the last 40 days at the sixteen
points). The scan is what the SLA summary reports: `state_on()` for each, counts by (state,
point), and the 20 nearest due dates. The baseline runs the same loop with only the date
comparison (`today >= breach_on`) and a count per point, so the ratio is the price of the rules.
Memory: the size of the deadlines held, and the extra peak of one scan (tracemalloc, in a
separate pass so it does not slow the timed ones).
"""

from __future__ import annotations

import gc
import heapq
import time
import tracemalloc
from collections import Counter
from datetime import date, timedelta
from typing import Any

from bench.common import median, ratio, say, stamp

POINTS = (
    "LIXIA",
    "SHIZHONG",
    "HUAIYIN",
    "TIANQIAO",
    "LICHENG",
    "CHANGQING",
    "ZHANGQIU",
    "GAOXIN",
    "NANSHAN",
    "JIYANG",
    "PINGYIN",
    "SHANGHE",
    "LAIWU",
    "GANGCHENG",
    "XUEYE",
    "LAIWUGX",
)
Open = tuple[str, str, Any]  # application id, point, DeadlineSchedule


def build(count: int, today: date) -> list[Open]:
    """`count` open deadlines as distinct objects (as loaded from the store)."""
    from permits_common.domain.calendar import WorkingDayCalendar
    from permits_issuance.domain.deadline import DeadlineSchedule, schedule

    calendar = WorkingDayCalendar()
    planned = [schedule(calendar, today - timedelta(days=age), 5) for age in range(40)]
    deadlines: list[Open] = []
    for i in range(count):
        p = planned[i % 40]
        deadlines.append(
            (
                f"app-{i:07d}",
                POINTS[i % 16],
                DeadlineSchedule(
                    p.accepted_on, p.due_date, p.provisional, p.at_risk_on, p.breach_on
                ),
            )
        )
    return deadlines


def classify(deadlines: list[Open], today: date) -> dict[str, Any]:
    """The SLA summary over the deadlines: states by point and the nearest due dates."""
    from permits_issuance.domain.deadline import state_on

    counts: Counter[tuple[str, str]] = Counter()
    for _, point, deadline in deadlines:
        counts[(state_on(deadline, today).value, point)] += 1
    nearest = heapq.nsmallest(20, deadlines, key=lambda item: (item[2].due_date, item[0]))
    return {"counts": counts, "nearest": [item[0] for item in nearest]}


def baseline(deadlines: list[Open], today: date) -> dict[str, Any]:
    """The same loop with only a date comparison."""
    counts: Counter[tuple[bool, str]] = Counter()
    for _, point, deadline in deadlines:
        counts[(today >= deadline.breach_on, point)] += 1
    return {"counts": counts}


def _timed(function: Any, deadlines: list[Open], today: date) -> float:
    gc.collect()
    started = time.perf_counter()
    function(deadlines, today)
    return time.perf_counter() - started


def _peak_mib(function: Any, deadlines: list[Open], today: date) -> float:
    gc.collect()
    tracemalloc.start()
    function(deadlines, today)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run(rounds: int = 3, count: int = 1_000_000) -> dict[str, Any]:
    from permits_common.domain.calendar import WorkingDayCalendar
    from permits_issuance.domain.deadline import schedule

    today = date.today()
    say(f"deadlines: building {count:,} open deadlines")
    tracemalloc.start()
    deadlines = build(count, today)
    held_mib = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    states = Counter(state for state, _ in classify(deadlines, today)["counts"].elements())
    scans: list[float] = []
    bases: list[float] = []
    for number in range(rounds):
        bases.append(_timed(baseline, deadlines, today))
        scans.append(_timed(classify, deadlines, today))
        say(f"deadlines round {number + 1}: scan {scans[-1]:.2f} s, baseline {bases[-1]:.2f} s")
    peak = _peak_mib(classify, deadlines, today)
    calendar = WorkingDayCalendar()
    sample = 100_000
    started = time.perf_counter()
    for i in range(sample):
        schedule(calendar, today - timedelta(days=i % 400), 5)
    schedule_us = (time.perf_counter() - started) / sample * 1e6
    scan = median(scans)
    base = median(bases)
    return {
        "benchmark": "deadlines",
        **stamp(),
        "setup": {
            "deadlines": count,
            "rounds": rounds,
            "accepted_over_days": 40,
            "points": 16,
            "states": dict(states),
        },
        "figure": {
            "classify_seconds": round(scan, 3),
            "deadlines_per_second": round(count / scan),
            "classify_peak_mib": round(peak, 2),
            "deadlines_mib": round(held_mib, 1),
            "baseline_seconds": round(base, 3),
            "ratio_to_baseline": ratio(scan, base),
            "schedule_microseconds_each": round(schedule_us, 1),
        },
        "target": {"classify_seconds": 2},
        "rounds": {"classify_seconds": scans, "baseline_seconds": bases},
    }
