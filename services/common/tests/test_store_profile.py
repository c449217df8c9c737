"""The store profile names each query by its collection, command and filter fields, no values."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import monitoring

from permits_common.store_profile import StoreProfile


def _started(request_id: int, name: str, command: dict[str, Any]) -> Any:
    return monitoring.CommandStartedEvent(
        command | {name: command[name]}, "db", request_id, ("h", 1), None
    )


def test_query_shapes_are_summed_without_values(tmp_path: Path) -> None:
    path = tmp_path / "intake-1.json"
    profile = StoreProfile(path)
    commands: list[tuple[str, dict[str, Any]]] = [
        ("find", {"find": "applications", "filter": {"holder": "H123", "status": "active"}}),
        ("find", {"find": "applications", "filter": {"status": "ready", "holder": "M9"}}),
        ("update", {"update": "cards", "updates": [{"q": {"_id": "370102"}, "u": {}}]}),
    ]
    for request_id, (name, command) in enumerate(commands):
        profile.started(_started(request_id, name, command))
        profile.succeeded(
            monitoring.CommandSucceededEvent(
                timedelta(milliseconds=2.5), {"ok": 1}, name, request_id, ("h", 1), None
            )
        )
    profile.write()
    table = json.loads(path.read_text())
    assert {row["shape"]: row["calls"] for row in table} == {
        "applications.find{holder,status}": 2,
        "cards.update{_id}": 1,
    }
    assert table[0]["seconds"] == 0.005
    assert "H123" not in path.read_text()
