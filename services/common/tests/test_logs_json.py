"""Production's JSON log lines, as a service process writes them to its standard error."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
from datetime import UTC, datetime
from permits_common.logs import REQUEST_ID, configure_logging, get_logger

configure_logging("INFO", json=True)
log = get_logger("http")
REQUEST_ID.set("req-1")
log.info("request", route="/api/v1/verify", status=200, phone="+85291234567",
         at=datetime(2026, 3, 1, tzinfo=UTC), odd=object())
log.debug("hidden")
log.warning("second", count=2)
"""


def test_each_event_is_one_json_line_with_personal_data_masked() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, check=True, timeout=60
    )
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "request"
    assert first["level"] == "info"
    assert first["component"] == "http"
    assert first["request_id"] == "req-1"
    assert first["status"] == 200
    assert first["phone"] == "***67"
    assert first["at"].startswith("2026-03-01T00:00:00")
    assert first["odd"].startswith("<object object")
    assert first["timestamp"].endswith("Z")
    assert (second["event"], second["level"], second["count"]) == ("second", "warning", 2)


ACCESS = """
import asyncio, sys
import httpx
from permits_common.logs import configure_logging
from permits_common.settings import CommonSettings
from permits_common.web.app import create_app

configure_logging(sys.argv[1], json=True)
app = create_app(service="logs", title="t", description="d", settings=CommonSettings(), checks={})

@app.get("/items/{item}")
async def item(item: str) -> dict[str, str]:
    return {"item": item}

async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(2):
            await client.get("/items/42?name=陈大文")

asyncio.run(main())
"""


def test_an_access_line_per_request_at_info_and_none_below() -> None:
    def lines(level: str) -> list[dict[str, object]]:
        done = subprocess.run(
            [sys.executable, "-c", ACCESS, level], capture_output=True, check=True, timeout=60
        )
        return [json.loads(line) for line in done.stderr.decode().splitlines()]

    access = [line for line in lines("INFO") if line["event"] == "request"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/items/{item}", 200)
    ] * 2
    assert all("陈大文" not in json.dumps(a, ensure_ascii=False) for a in access), "no query"
    assert [line for line in lines("WARNING") if line["event"] == "request"] == []
