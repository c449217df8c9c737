"""Outgoing HTTP to a partner (the SMS gateway, the production centre, the agencies' webhook
endpoints): one keep-alive pool per process, sized to the calls the caller keeps in flight.

The services that call a partner for every application spend much of their CPU in the HTTP
client, so the client is aiohttp's: `bench/http_client.py` measured 0.13–0.16 ms of client CPU a
request against 0.9–2.0 ms for httpx's pool at 4–16 in flight (httpx's pool checks every idle
connection at each request, and httpcore asks `import sniffio` at every request). The pool
holds `in_flight` connections and a semaphore lets no more requests than that in at once, so
none waits in the pool and none opens a connection the pool would then close.

What the callers keep from the httpx client this replaced: one timeout per phase (connecting,
including the wait for a pooled connection, and each read of the answer), no redirects
followed, no retries (the callers retry with their own backoff), no cookies kept, and every
failure to get an answer raised as one exception type, `PartnerUnreachableError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp


class PartnerUnreachableError(Exception):
    """No answer: refused or reset connection, timeout, a broken or cut-off response."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause_name = type(cause).__name__
        self.timed_out = isinstance(cause, TimeoutError)


@dataclass(frozen=True, slots=True)
class PartnerAnswer:
    """The partner's status code and the whole body it answered."""

    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300


class PartnerClient:
    """POSTs to partners over a pool of `in_flight` keep-alive connections.

    The aiohttp session is opened at the first request (it belongs to the running event loop,
    and callers are built before their loop runs); `close` releases it."""

    def __init__(self, *, timeout: float, in_flight: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._in_flight_limit = in_flight
        self._in_flight = asyncio.Semaphore(in_flight)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._in_flight_limit),
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PartnerAnswer:
        """POST `body` (the caller sets its content type); the answer, whatever its status,
        or `PartnerUnreachableError` when there is none."""
        session = self._session or self._open()
        try:
            async with (
                self._in_flight,
                session.post(url, data=body, headers=headers, allow_redirects=False) as response,
            ):
                return PartnerAnswer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PartnerUnreachableError(exc) from exc

    async def close(self) -> None:
        """Release the pool's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
