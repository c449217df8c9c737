"""The load generator: a separate process, asyncio + aiohttp, a fixed number of connections.

Reads one JSON spec on stdin, writes one JSON result on stdout:

    {"base_url": "http://127.0.0.1:8201", "kind": "get" | "applications",
     "requests": 3000, "concurrency": 64, "max_seconds": 60, "warmup": 64,
     "headers": {...}, "paths": ["/healthz"],            # get: paths are cycled
     "permit_seed": 12345678}                             # applications: first permit number

Request bodies, keys and paths are built before the clock starts, so the generator spends its
time on the wire. Latency is measured per request (send to full body read); the rate counts
only the expected answers (200/201) over the wall time of the whole batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

import aiohttp
import orjson

from permits_intake.domain.examples import application_body as example_body

POINTS = ("LIXIA", "SHIZHONG", "HUAIYIN", "TIANQIAO", "LICHENG", "GAOXIN")


def application_body(index: int, seed: int) -> dict[str, Any]:
    """A first application that passes every rule; a new person (permit number) per index."""
    number = (seed + index) % 10**8
    return example_body(
        acceptance_point=POINTS[index % len(POINTS)],
        applicant__sex="M" if index % 2 else "F",
        applicant__birth_date=(date(1970, 1, 1) + timedelta(days=index % 12000)).isoformat(),
        applicant__travel_permit_number=f"H{number:08d}",
        applicant__phone=f"+8529{number % 10**7:07d}",
        applicant__email=f"bench{number}@example.com",
        residence__since=(date.today() - timedelta(days=400)).isoformat(),
    )


class Request:
    """One prepared request: nothing is built while the clock runs."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


def prepare(spec: dict[str, Any], count: int, offset: int = 0) -> list[Request]:
    """The requests of one batch."""
    headers = dict(spec.get("headers", {}))
    if spec["kind"] == "applications":
        seed = int(spec["permit_seed"])
        json_headers = {**headers, "Content-Type": "application/json"}
        return [
            Request(
                "POST",
                "/api/v1/applications",
                {**json_headers, "Idempotency-Key": str(uuid.uuid4())},
                orjson.dumps(application_body(offset + i, seed)),
            )
            for i in range(count)
        ]
    paths: list[str] = spec["paths"]
    return [Request("GET", paths[(offset + i) % len(paths)], headers, None) for i in range(count)]


async def fire(
    session: aiohttp.ClientSession,
    base_url: str,
    requests: list[Request],
    concurrency: int,
    max_seconds: float,
    keep_ids: bool,
) -> dict[str, Any]:
    """Send the requests over `concurrency` connections; stop early at `max_seconds`."""
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    ids: list[tuple[str, float]] = []
    cursor = 0
    started = time.perf_counter()
    stop_at = started + max_seconds

    async def worker() -> None:
        nonlocal cursor
        while cursor < len(requests):
            request = requests[cursor]
            cursor += 1
            sent = time.perf_counter()
            if sent > stop_at:
                return
            try:
                async with session.request(
                    request.method,
                    base_url + request.path,
                    headers=request.headers,
                    data=request.body,
                ) as response:
                    payload = await response.read()
                    status: int | str = response.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, payload = type(exc).__name__, b""
            done = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            if status in (200, 201):
                latencies.append(done - sent)
                if keep_ids:
                    ids.append((orjson.loads(payload)["id"], time.time()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(fraction: float) -> float:
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
        return round(ordered[rank] * 1000, 2)

    result: dict[str, Any] = {
        "sent": sum(statuses.values()),
        "ok": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "seconds": round(elapsed, 3),
        "rate": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else float("nan"),
    }
    if keep_ids:
        result["ids"] = ids
    return result


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec.get("concurrency", 64))
    total = int(spec["requests"])
    warmup = int(spec.get("warmup", concurrency))
    timeout = aiohttp.ClientTimeout(total=float(spec.get("request_timeout", 30)))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if warmup:
            # Opens the connections and warms the server's caches; not counted.
            await fire(
                session, spec["base_url"], prepare(spec, warmup, total), concurrency, 30, False
            )
        requests = prepare(spec, total)
        return await fire(
            session,
            spec["base_url"],
            requests,
            concurrency,
            float(spec.get("max_seconds", 60)),
            bool(spec.get("keep_ids", False)),
        )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    outcome = asyncio.run(main(json.loads(sys.stdin.read())))
    sys.stdout.write(json.dumps(outcome))
