"""Outgoing HTTP connection pools (httpx) sized to the calls a service keeps in flight.

httpx's CPU per request is the largest single cost of the services that call a partner for
every application (the SMS gateway, the production centre), so two of its costs are avoided:
- httpcore asks `import sniffio` on every request and at every connection hand-over; with
  anyio 4 sniffio is no longer installed, and a failed import is not cached, so each ask
  searches the whole module path again (a seventh of notify's CPU in the pipeline benchmark).
  When sniffio is absent, the absence is recorded once in `sys.modules`, which answers
  every later ask at once exactly as before (ImportError: asyncio is assumed);
- the pool's bookkeeping on every request grows with the requests and connections it holds,
  so the pool is sized to the calls the caller lets in flight (measured in
  `bench/http_client.py`: CPU per request at 32 in flight is 2.4 times that at 8).
"""

from __future__ import annotations

import importlib.util
import sys

import httpx


def record_missing_sniffio() -> None:
    """Make httpcore's repeated `import sniffio` fail at once when sniffio is not installed
    (a module set to None in `sys.modules` raises ImportError without searching)."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def pooled_client(*, timeout: float, in_flight: int) -> httpx.AsyncClient:
    """An HTTP/1.1 keep-alive client whose pool holds `in_flight` connections: the caller
    bounds its concurrent requests to that number (a semaphore), so none waits in the pool."""
    record_missing_sniffio()
    return httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
    )
