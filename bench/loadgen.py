"""The load generator: a separate process, raw HTTP/1.1 keep-alive connections on uvloop.

Reads one JSON spec on stdin, writes one JSON result on stdout:

    {"base_url": "http://127.0.0.1:8201", "kind": "get" | "applications",
     "requests": 3000, "concurrency": 64, "max_seconds": 60, "warmup": 64,
     "headers": {...}, "paths": ["/healthz"],            # get: paths are cycled
     "expected": [[200, {...}], ...],                     # get, optional: the answer per path
     "permit_seed": 12345678}                             # applications: first permit number

It shares the machine's cores with the server it measures, so it spends as little CPU per
request as it can: every request is encoded to bytes before the clock starts, each connection is
an `asyncio.Protocol` that writes its next request from the callback of the previous answer (no
task or future per request), and answers are parsed by httptools (the parser uvicorn itself
uses). Bodies are kept and checked against `expected` only after the clock has stopped.

Latency is measured per request (request written to the end of the answer); the rate counts
only the expected statuses (200/201) over the wall time of the whole batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import orjson

from permits_intake.domain.examples import application_body as example_body

POINTS = ("LIXIA", "SHIZHONG", "HUAIYIN", "TIANQIAO", "LICHENG", "GAOXIN")
OK_STATUSES = (200, 201)


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


def encode_request(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    """One complete HTTP/1.1 keep-alive request on the wire."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def prepare(spec: dict[str, Any], host: str, count: int, offset: int = 0) -> list[bytes]:
    """The requests of one batch, as bytes."""
    headers = dict(spec.get("headers", {}))
    if spec["kind"] == "applications":
        seed = int(spec["permit_seed"])
        json_headers = {**headers, "Content-Type": "application/json"}
        return [
            encode_request(
                "POST",
                host,
                "/api/v1/applications",
                {**json_headers, "Idempotency-Key": str(uuid.uuid4())},
                orjson.dumps(application_body(offset + i, seed)),
            )
            for i in range(count)
        ]
    paths: list[str] = spec["paths"]
    encoded = [encode_request("GET", host, path, headers, None) for path in paths]
    return [encoded[(offset + i) % len(encoded)] for i in range(count)]


class Batch:
    """One batch of requests over many connections; what every request got back."""

    def __init__(self, requests: list[bytes], max_seconds: float, keep_bodies: bool) -> None:
        self.requests = requests
        self.keep_bodies = keep_bodies
        self.cursor = 0
        self.in_flight = 0
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        self.stop_at = self.started + max_seconds
        self.latencies: list[float] = []
        self.statuses: dict[int | str, int] = {}
        self.bodies: list[tuple[int, int, bytes, float]] = []  # (index, status, body, time)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def next_request(self) -> tuple[int, bytes] | None:
        """The next request to send, or None when the batch is sent or out of time."""
        if self.cursor >= len(self.requests) or time.perf_counter() > self.stop_at:
            return None
        index = self.cursor
        self.cursor += 1
        self.in_flight += 1
        return index, self.requests[index]

    def answered(self, index: int, status: int | str, body: bytes, latency: float) -> None:
        self.in_flight -= 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status in OK_STATUSES:
            self.latencies.append(latency)
        if self.keep_bodies and isinstance(status, int):
            self.bodies.append((index, status, body, time.time()))

    def idle(self) -> None:
        """A connection has nothing left to send: the batch ends with the last answer."""
        if self.in_flight == 0 and not self.done.done():
            self.done.set_result(None)


class Connection(asyncio.Protocol):
    """One keep-alive connection: sends the next request when the previous answer is complete."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.batch: Batch | None = None
        self.index = -1
        self.sent = 0.0
        self.body: list[bytes] = []
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def start(self, batch: Batch) -> None:
        self.batch = batch
        self.send_next()

    def send_next(self) -> None:
        assert self.batch is not None
        assert self.transport is not None
        request = self.batch.next_request() if not self.transport.is_closing() else None
        if request is None:
            self.index = -1
            self.batch.idle()
            return
        self.index, data = request
        self.body = []
        self.sent = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.batch is not None
        latency = time.perf_counter() - self.sent
        self.batch.answered(self.index, self.parser.get_status_code(), b"".join(self.body), latency)
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.batch is not None and self.index >= 0:
            self.batch.answered(self.index, "connection_lost", b"", 0.0)
            self.index = -1
            self.batch.idle()
        if not self.lost.done():
            self.lost.set_result(None)


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in ms, nearest rank."""
    ordered = sorted(latencies)

    def pct(fraction: float) -> float:
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
        return round(ordered[rank] * 1000, 2)

    return {
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else float("nan"),
    }


def check_answers(batch: Batch, expected: list[list[Any]], offset: int = 0) -> dict[str, Any]:
    """Compare every answer with the one expected for its path (paths are cycled)."""
    wrong: list[dict[str, Any]] = []
    by_answer: dict[str, int] = {}
    for index, status, body, _at in batch.bodies:
        want_status, want_body = expected[(offset + index) % len(expected)]
        got_body = orjson.loads(body) if body else None
        if status != want_status or got_body != want_body:
            wrong.append(
                {
                    "request": index,
                    "status": status,
                    "body": got_body,
                    "expected": [want_status, want_body],
                }
            )
        label = str(want_body.get("status")) if isinstance(want_body, dict) else str(want_status)
        by_answer[label] = by_answer.get(label, 0) + 1
    return {
        "checked": len(batch.bodies),
        "wrong": len(wrong),
        "wrong_examples": wrong[:5],
        "checked_by_expected_answer": dict(sorted(by_answer.items())),
    }


async def fire(
    connections: list[Connection], requests: list[bytes], max_seconds: float, keep_bodies: bool
) -> Batch:
    """Send the batch over every open connection; stop early at `max_seconds`."""
    batch = Batch(requests, max_seconds, keep_bodies)
    for connection in connections:
        connection.start(batch)
    await batch.done
    return batch


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec.get("concurrency", 64))
    total = int(spec["requests"])
    warmup = int(spec.get("warmup", concurrency))
    address = urlsplit(spec["base_url"])
    host, port = address.hostname or "127.0.0.1", address.port or 80
    expected: list[list[Any]] | None = spec.get("expected")
    keep_ids = bool(spec.get("keep_ids", False))
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(concurrency):
        _transport, protocol = await loop.create_connection(Connection, host, port)
        connections.append(protocol)
    try:
        if warmup:
            # Warms the server's caches (and the first answers' code paths); not counted.
            await fire(connections, prepare(spec, f"{host}:{port}", warmup, total), 30, False)
        requests = prepare(spec, f"{host}:{port}", total)
        batch = await fire(
            [c for c in connections if not c.lost.done()],
            requests,
            float(spec.get("max_seconds", 60)),
            keep_bodies=keep_ids or expected is not None,
        )
        elapsed = time.perf_counter() - batch.started
        cpu = time.process_time() - batch.cpu_started
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    result: dict[str, Any] = {
        "client": "raw HTTP/1.1 keep-alive (asyncio.Protocol + httptools on uvloop)",
        "sent": sum(batch.statuses.values()),
        "ok": len(batch.latencies),
        "statuses": {str(k): v for k, v in sorted(batch.statuses.items(), key=str)},
        "seconds": round(elapsed, 3),
        "rate": round(len(batch.latencies) / elapsed, 1) if elapsed else 0.0,
        "client_cpu_seconds": round(cpu, 3),
        **percentiles(batch.latencies),
    }
    if expected is not None:
        result["answers"] = check_answers(batch, expected)
    if keep_ids:
        result["ids"] = [
            (orjson.loads(body)["id"], answered_at)
            for _index, status, body, answered_at in batch.bodies
            if status in OK_STATUSES
        ]
    return result


if __name__ == "__main__":
    import uvloop

    outcome = uvloop.run(main(json.loads(sys.stdin.read())))
    sys.stdout.write(json.dumps(outcome))
