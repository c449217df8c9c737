"""The rights service with its audit trail timed: where an audited answer's wait goes.
Benchmarks only, never deployed (`bench/audit_latency.py` drives it).

It records, in the service's own process: each request's wait for its audit entry and whether
every publisher already had a batch in flight when its entry arrived; per batch its size, how
long its first entry waited for the batch to start and the time from its start to the
broker's acknowledgement (building it and handing it over took 0.2-0.3 ms of that at the
median); the event loop's lag (a 1 ms sleeper's overshoot) and the garbage collector's pauses; with
`BENCH_TRACE_STALLS=1` also the loop's stalls over 20 ms and where it was (from a watchdog
thread, which costs the loop a share of the GIL). Everything is appended to lists and written
as JSON to `BENCH_TRACE_FILE`, with the process's CPU time so far, when the driver asks
between rounds.

    python -m bench.rights_traced     (the settings of `python -m permits_rights`)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

from permits_common.audit import AuditTrail

TRACE: dict[str, list[Any]] = {
    "request_wait": [],  # [seconds, 1 if every publisher had a batch in flight when it came]
    "batch": [],  # [entries, first entry's wait before start, seconds to the acknowledgement]
    "loop_lag": [],  # seconds a 1 ms sleep overshot
    "gc": [],  # [generation, seconds]
    "stalls": [],  # [seconds the loop had not ticked, the loop thread's innermost frames]
}
_state: dict[str, Any] = {"first_enqueued": {}, "gc_started": 0.0}

_record = AuditTrail.record
_send_all = AuditTrail._send_all
_start = AuditTrail.start


async def _timed_record(trail: AuditTrail, *args: Any, **kwargs: Any) -> None:
    began = time.perf_counter()
    if not trail._pending:
        _state["first_enqueued"][id(trail._pending)] = began
    every_publisher_busy = 0 if trail._idle else 1
    try:
        await _record(trail, *args, **kwargs)
    finally:
        TRACE["request_wait"].append([time.perf_counter() - began, every_publisher_busy])


async def _timed_send_all(
    trail: AuditTrail, publisher: Any, entries: list[Any], expiry: Any
) -> None:
    began = time.perf_counter()
    first = _state["first_enqueued"].pop(id(entries), None)
    try:
        await _send_all(trail, publisher, entries, expiry)
    finally:
        waited = began - first if first is not None else 0.0
        TRACE["batch"].append([len(entries), waited, time.perf_counter() - began])


async def _lag_monitor() -> None:
    while True:
        began = time.perf_counter()
        _state["tick"] = began
        await asyncio.sleep(0.001)
        TRACE["loop_lag"].append(time.perf_counter() - began - 0.001)


def _watchdog(loop_thread: int) -> None:
    """From another thread: when the loop has not ticked for 20 ms, note where it is (once
    per stall), to tell a stall in Python code from one outside it."""
    noted = None
    while True:
        time.sleep(0.005)
        tick = _state.get("tick")
        if tick is None or time.perf_counter() - tick < 0.02 or noted == tick:
            continue
        noted = tick
        frame = sys._current_frames().get(loop_thread)
        where = traceback.format_stack(frame, limit=6) if frame is not None else []
        TRACE["stalls"].append([time.perf_counter() - tick, [line.strip() for line in where]])


def _dump_if_wanted(path: str) -> None:
    """Write the trace when the driver asks (`<path>.want` exists), between rounds: writing
    it while the load runs would stall the loop itself."""
    wanted = path + ".want"
    if os.path.exists(wanted):
        with open(path + ".tmp", "w") as out:
            json.dump({**TRACE, "cpu_seconds": time.process_time()}, out)
        os.replace(path + ".tmp", path)
        os.remove(wanted)


async def _writer(path: str) -> None:
    while True:
        await asyncio.sleep(0.1)
        _dump_if_wanted(path)


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _state["gc_started"] = time.perf_counter()
    else:
        TRACE["gc"].append([info["generation"], time.perf_counter() - _state["gc_started"]])


def _traced_start(trail: AuditTrail) -> None:
    _start(trail)
    asyncio.get_running_loop().create_task(_lag_monitor())
    if os.environ.get("BENCH_TRACE_STALLS"):
        threading.Thread(target=_watchdog, args=(threading.get_ident(),), daemon=True).start()
    asyncio.get_running_loop().create_task(_writer(os.environ["BENCH_TRACE_FILE"]))


if __name__ == "__main__":
    from permits_rights.main import main

    AuditTrail.record = _timed_record  # type: ignore[method-assign, assignment]
    AuditTrail._send_all = _timed_send_all  # type: ignore[method-assign, assignment]
    AuditTrail.start = _traced_start  # type: ignore[method-assign, assignment]
    gc.callbacks.append(_gc_timer)
    main()
