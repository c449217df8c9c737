"""Where a process spends its time in the document store, by command and query shape.

Turned on with `PERMITS_MONGO_PROFILE_DIR`; each process then writes
`<dir>/<process>-<pid>.json` every few seconds. A query's shape is its collection, its command
and the field names of its filter (never the values), so the file holds no personal data.
Used by the pipeline benchmark to find the queries that read whole collections.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pymongo import monitoring

WRITE_EVERY_SECONDS = 5.0
_FILTER_FIELD = {"find": "filter", "count": "query", "delete": "deletes", "update": "updates"}


def _shape_of(command_name: str, command: Any) -> str:
    """`collection.command{field,...}`: what the store was asked, without any value."""
    collection = command.get(command_name, "")
    if command_name in ("update", "delete"):
        statements = command.get(_FILTER_FIELD[command_name]) or [{}]
        query = statements[0].get("q", {})
    elif command_name == "findAndModify":
        query = command.get("query", {})
    elif command_name == "aggregate":
        query = {"pipeline": 1}
    else:
        query = command.get(_FILTER_FIELD.get(command_name, "filter"), {}) or {}
    fields = ",".join(sorted(query)) if isinstance(query, dict) else "?"
    return f"{collection}.{command_name}{{{fields}}}"


class StoreProfile(monitoring.CommandListener):
    """Sums the time and count of each query shape, from the driver's own command events."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._started: dict[tuple[int, int], str] = {}
        self._totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        key = (event.request_id, event.operation_id or 0)
        self._started[key] = _shape_of(event.command_name, event.command)

    def _finished(self, event: Any) -> None:
        shape = self._started.pop((event.request_id, event.operation_id or 0), None)
        if shape is None:
            return
        with self._lock:
            total = self._totals[shape]
            total[0] += 1
            total[1] += event.duration_micros / 1e6

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finished(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event)

    def write(self) -> None:
        """Replace the profile file with the totals so far, slowest shapes first."""
        with self._lock:
            rows = sorted(self._totals.items(), key=lambda item: -item[1][1])
        table = [
            {"shape": shape, "calls": int(calls), "seconds": round(seconds, 3)}
            for shape, (calls, seconds) in rows
        ]
        partial = self._path.with_suffix(".partial")
        partial.write_text(json.dumps(table, indent=1))
        partial.replace(self._path)

    def write_periodically(self) -> None:
        """Keep the file current, so a process stopped with SIGKILL still leaves a profile."""
        while True:
            time.sleep(WRITE_EVERY_SECONDS)
            self.write()


_profile: StoreProfile | None = None


def profile_listeners() -> list[monitoring.CommandListener]:
    """The listener to give the client when profiling is on (one per process), else none."""
    global _profile
    directory = os.environ.get("PERMITS_MONGO_PROFILE_DIR")
    if not directory:
        return []
    if _profile is None:
        main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
        process = main.parent.name if main.stem == "__main__" else main.stem
        Path(directory).mkdir(parents=True, exist_ok=True)
        _profile = StoreProfile(Path(directory) / f"{process}-{os.getpid()}.json")
        threading.Thread(target=_profile.write_periodically, daemon=True).start()
        atexit.register(_profile.write)
    return [_profile]
