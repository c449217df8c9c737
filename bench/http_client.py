"""CPU per request of the services' outgoing HTTP client: `permits_common.http_client.
PartnerClient` (aiohttp, pool sized to the requests in flight) against the httpx client it
replaced (pool sized the same, httpcore's failed `import sniffio` asked once), at several
numbers of requests in flight.

Each measurement is its own process posting SMS to the SMS gateway simulator, itself a process
of its own on a free port, as notify does; rounds alternate between the clients and the
medians are printed. Not part of `all` and nothing is saved:

    python -m bench.http_client [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid

from bench.common import REPO, say

IN_FLIGHT = (4, 8, 16, 32)
CLIENTS = ("httpx_pooled", "partner_client")


def _body(key: str) -> dict[str, str]:
    return {"to": "+85291234567", "text": "您的申請已受理。" * 4, "reference": key}


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": "Bearer dev-sms-key", "Idempotency-Key": key}


async def _measure_partner_client(url: str, requests: int, in_flight: int) -> float:
    """As `_measure`, with the services' client (JSON encoded as notify does)."""
    import orjson

    from permits_common.http_client import PartnerClient

    client = PartnerClient(timeout=10, in_flight=in_flight)
    run = uuid.uuid4().hex[:8]

    async def post(number: int) -> None:
        key = f"{run}-{number}"
        headers = {"Content-Type": "application/json", **_headers(key)}
        answer = await client.post(url, orjson.dumps(_body(key)), headers)
        if not answer.is_success:
            raise RuntimeError(f"gateway answered {answer.status}")
        orjson.loads(answer.body)

    await asyncio.gather(*(post(n) for n in range(200)))
    started = time.process_time()
    await asyncio.gather(*(post(n) for n in range(200, 200 + requests)))
    spent = time.process_time() - started
    await client.close()
    return spent * 1e6 / requests


async def _measure(client_kind: str, url: str, requests: int, in_flight: int) -> float:
    """Client CPU microseconds per request, after a warm-up of 200."""
    if client_kind == "partner_client":
        return await _measure_partner_client(url, requests, in_flight)
    import httpx

    # httpcore asks `import sniffio` at every request; with anyio 4 it is not installed and a
    # failed import is not cached, so the baseline records its absence once, as the services'
    # httpx client did.
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    client = httpx.AsyncClient(
        timeout=10,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
    )
    gate = asyncio.Semaphore(in_flight)
    run = uuid.uuid4().hex[:8]

    async def post(number: int) -> None:
        key = f"{run}-{number}"
        async with gate:
            response = await client.post(url, json=_body(key), headers=_headers(key))
            response.raise_for_status()
            response.json()

    await asyncio.gather(*(post(n) for n in range(200)))
    started = time.process_time()
    await asyncio.gather(*(post(n) for n in range(200, 200 + requests)))
    spent = time.process_time() - started
    await client.aclose()
    return spent * 1e6 / requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one(client_kind: str, url: str, requests: int, in_flight: int) -> float:
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "bench.http_client", "--one", client_kind, url),
            *("--requests", str(requests), "--in-flight", str(in_flight)),
        ],
        capture_output=True,
        cwd=REPO,
        check=True,
    )
    return float(completed.stdout)


def run(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median CPU µs per request by client and requests in flight."""
    port = _free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "permits_notify.simulators", "sms", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/messages"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        samples: dict[str, dict[str, list[float]]] = {
            kind: {str(n): [] for n in IN_FLIGHT} for kind in CLIENTS
        }
        for number in range(rounds):
            for in_flight in IN_FLIGHT:
                for kind in CLIENTS:
                    samples[kind][str(in_flight)].append(_one(kind, url, requests, in_flight))
            say(f"http client round {number + 1}: {samples}")
    finally:
        gateway.terminate()
        gateway.wait(15)
    return {
        kind: {n: round(statistics.median(v)) for n, v in by_flight.items()}
        for kind, by_flight in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_client", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("CLIENT", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--in-flight", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, url = args.one
        print(asyncio.run(_measure(kind, url, args.requests, args.in_flight)))
        return
    print(json.dumps({"cpu_us_per_request": run(args.requests, args.rounds)}, indent=2))


if __name__ == "__main__":
    main()
