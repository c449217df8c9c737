"""CPU per request of the application layers alone: the rights service's ASGI app (verification
and /healthz) and the bare reference app, called in process without sockets or a server.

The HTTP benchmarks measure the whole path on a machine shared with other people's work, so
their rates move with the load; CPU seconds per request of the app itself hardly do. This
isolates what the shared middleware, routing, dependencies, the endpoint and its audit entry
cost, and with `--profile` writes the cProfile of the verification requests (the profile of one
request, summed over many). `shared layers alone` is the CPU of `create_app`'s own layers per
request (request id, principal, fast-path lookup, histogram, access log), wrapped around an app
that only answers, less that app alone: the same figure for any service, without FastAPI.

Each verification waits for its audit entry to be on Kafka, so the service's producer runs
against the broker (`PERMITS_KAFKA_BOOTSTRAP`) on a topic of this run, removed at the end, and
requests are driven by 64 concurrent callers (as the HTTP benchmark's connections) so that
entries share batches as they do under load.

    python -m bench.asgi_cost [--requests N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

AGENCY_TOKEN = b"Bearer dev-agency-hotel"
CONCURRENCY = 64
_JSON = (b"content-type", b"application/json")


def _rights_app(audit_topic: str) -> tuple[ASGIApp, list[str], Any]:
    """The service's own app (as `build_api` makes it) over an in-memory register, and its
    runtime (whose producer and audit trail the caller starts)."""
    from bench.register import card_numbers
    from permits_common.domain.card import HolderStatus
    from permits_rights.config import RightsSettings
    from permits_rights.domain.holder import RegisterEntry
    from permits_rights.domain.names import normalize_name
    from permits_rights.main import build_api
    from permits_rights.service.runtime import Runtime

    settings = RightsSettings(verify_rate_per_second=1e9, verify_burst=1e9, audit_topic=audit_topic)
    runtime = Runtime(settings)
    numbers = card_numbers(2000)
    until = date.today() + timedelta(days=900)
    for number in numbers:
        runtime.index.apply(
            number,
            RegisterEntry(
                1, HolderStatus.ACTIVE, normalize_name("陈大文"), normalize_name("CHAN"), until
            ),
        )
    runtime.replica.ready.set()
    queries = [
        "/api/v1/verify?" + urlencode({"number": number, "name": "陈大文"}) for number in numbers
    ]
    return build_api(runtime), queries, runtime


def _scope(target: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _drive(
    app: ASGIApp, targets: list[str], headers: list[tuple[bytes, bytes]], count: int
) -> dict[str, Any]:
    """`count` requests from CONCURRENCY callers, each one request after the other; CPU
    seconds per request and the statuses."""
    statuses: dict[int, int] = {}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    scopes = [_scope(targets[i % len(targets)], headers) for i in range(count)]

    async def caller(mine: list[dict[str, Any]]) -> None:
        for scope in mine:
            await app(scope, receive, send)

    started = time.process_time()
    await asyncio.gather(*(caller(scopes[i::CONCURRENCY]) for i in range(CONCURRENCY)))
    cpu = time.process_time() - started
    return {
        "requests": count,
        "cpu_us_per_request": round(cpu / count * 1e6, 1),
        "statuses": statuses,
    }


async def _answer(_scope: Scope, _receive: Receive, send: Send) -> None:
    """The least an app can do: a 200 with a two-byte JSON body."""
    await send({"type": "http.response.start", "status": 200, "headers": [_JSON]})
    await send({"type": "http.response.body", "body": b"{}"})


def _shared_layers_around(inner: ASGIApp) -> ASGIApp:
    """The layers `create_app` adds (the platform's own, outside FastAPI's inner layers and
    router) around `inner`, as they are in a service's middleware stack."""
    from permits_common.settings import CommonSettings
    from permits_common.web.app import create_app

    app = create_app(
        service="bench-layers",
        title="layers",
        description="the shared layers alone",
        settings=CommonSettings(tokens={"dev-agency-hotel": "agency:hotel"}),
        checks={},
    )
    chain: list[Any] = []
    node: Any = app.build_middleware_stack()
    while node is not None:
        if type(node).__module__.startswith("permits_common."):
            chain.append(node)
        node = getattr(node, "app", None)
    chain[-1].app = inner
    layers: ASGIApp = chain[0]
    return layers


async def _layers_alone(count: int) -> dict[str, Any]:
    """CPU per request of the shared layers: around `_answer`, less `_answer` alone; medians
    of 5 alternating runs."""
    layers = _shared_layers_around(_answer)
    auth = [(b"authorization", AGENCY_TOKEN)]
    runs: dict[str, list[float]] = {"alone": [], "layers": []}
    await _drive(layers, ["/healthz"], auth, 500)
    for _ in range(5):
        for name, app in (("alone", _answer), ("layers", layers)):
            runs[name].append((await _drive(app, ["/healthz"], auth, count))["cpu_us_per_request"])
    alone, wrapped = statistics.median(runs["alone"]), statistics.median(runs["layers"])
    return {
        "requests": count,
        "cpu_us_per_request": round(wrapped - alone, 2),
        "answer_alone_us": alone,
        "with_layers_us": wrapped,
    }


async def measure(count: int, profile: str | None) -> dict[str, Any]:
    from bench.common import delete_topics
    from permits_common.events.topics import TopicSpec
    from permits_common.kafka import ensure_topics

    audit_topic = f"bench-asgi-{uuid.uuid4().hex[:8]}-audit"
    rights, queries, runtime = _rights_app(audit_topic)
    await ensure_topics(runtime.settings, [TopicSpec(audit_topic, "subject", "audit of a run")])
    await runtime.start_publishing()
    try:
        return await _measure(rights, queries, count, profile)
    finally:
        await runtime.stop_publishing()
        await delete_topics([audit_topic])


async def _measure(
    rights: ASGIApp, queries: list[str], count: int, profile: str | None
) -> dict[str, Any]:
    from bench.reference import build_app

    reference = build_app()
    auth = [(b"authorization", AGENCY_TOKEN)]
    for app, targets, headers in ((reference, ["/healthz"], []), (rights, queries, auth)):
        await _drive(app, targets, headers, 500)  # warm-up: routes compiled, caches filled
    results: dict[str, Any] = {}
    for _ in range(3):  # alternate, keep the best of each (least disturbed by neighbours)
        for name, app, targets, headers in (
            ("reference /healthz", reference, ["/healthz"], []),
            ("service /healthz", rights, ["/healthz"], []),
            ("service /api/v1/verify", rights, queries, auth),
        ):
            run = await _drive(app, targets, headers, count)
            best = results.get(name)
            if best is None or run["cpu_us_per_request"] < best["cpu_us_per_request"]:
                results[name] = run
    results["shared layers alone"] = await _layers_alone(count)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await _drive(rights, queries, auth, count)
        profiler.disable()
        profiler.dump_stats(profile)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.asgi_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", help="write the cProfile stats of the verify requests here")
    parser.add_argument(
        "--log-level", default="WARNING", help="as PERMITS_LOG_LEVEL (INFO writes access logs)"
    )
    parser.add_argument(
        "--json-logs", action="store_true", help="log lines as JSON, as in production"
    )
    args = parser.parse_args()
    import uvloop

    from permits_common.logs import configure_logging

    configure_logging(args.log_level, args.json_logs)

    print(json.dumps(uvloop.run(measure(args.requests, args.profile)), indent=2))


if __name__ == "__main__":
    main()
