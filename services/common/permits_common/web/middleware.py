"""The shared request pipeline as plain ASGI middleware: no task, stream or Request object of
its own per request (Starlette's `BaseHTTPMiddleware` costs an extra task and a memory stream
for every request and every layer).

Two layers, outermost first:

- `ObservedRequests`: the request id (taken from a well-formed `X-Request-ID`, else made here,
  echoed on the answer and bound to every log line of the request), the latency histogram,
  the access log line, and the last-resort problem document for an error nothing else handled.
- `BearerAuthentication`: who is calling, looked up once per request and left in
  `scope["state"]["principal"]` (a `Principal`, or None) for the route's role check and for
  anything else that needs the actor (audit records).

What can be worked out once is: the token table is built at start-up, and each (route, method,
status class) resolves its histogram child once and then comes from a dict.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from permits_common.kafka import TRANSIENT_ERRORS
from permits_common.logs import REQUEST_ID, get_logger
from permits_common.metrics import HTTP_REQUEST_SECONDS
from permits_common.web.auth import TokenAuthority
from permits_common.web.problems import RETRY_AFTER_SECONDS, ProblemResponse, problem_body

REQUEST_ID_HEADER = b"x-request-id"
_WELL_FORMED_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
UNMATCHED_ROUTE = "unmatched"

log = get_logger("http")
_UNDECIDED = object()
"""The access log before the first request has decided whether lines are written."""


def _request_id(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The caller's `X-Request-ID` if short and plain (it goes into logs), else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _WELL_FORMED_REQUEST_ID.fullmatch(value):
                return value
            break
    return os.urandom(12).hex().encode()


def _unhandled_problem(exc: Exception) -> ProblemResponse:
    """503 with Retry-After for an unreachable store or broker, 500 for anything else."""
    if isinstance(exc, TRANSIENT_ERRORS):
        log.warning("dependency unavailable", error=type(exc).__name__)
        return ProblemResponse(
            problem_body(
                503,
                "service_unavailable",
                "Service unavailable",
                "A backing service is unreachable; retry later.",
            ),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("unhandled error", error=repr(exc), exc_info=exc)
    return ProblemResponse(
        problem_body(500, "internal_error", "Internal error", "An unexpected error occurred."),
        status_code=500,
    )


class ObservedRequests:
    """Request id, latency histogram, access log and last-resort problem details."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._histograms: dict[tuple[str, str, int], Any] = {}
        self._access_log: Any = _UNDECIDED

    def _histogram(self, route: str, method: str, status: int) -> Any:
        key = (route, method, status // 100)
        child = self._histograms.get(key)
        if child is None:
            child = HTTP_REQUEST_SECONDS.labels(
                self.service,
                route,
                method if method in _METHODS else "OTHER",
                _STATUS_CLASSES.get(status // 100, "other"),
            )
            self._histograms[key] = child
        return child

    def _logger(self) -> Any:
        """The access log's logger, bound once on the first request (after the process set its
        logging up): through the module's lazy proxy, a line below the configured level cost a
        microsecond of lookups per request. None when the level drops access lines, which
        spares every request the line's arguments as well (a few microseconds)."""
        if self._access_log is _UNDECIDED:
            bound = log.bind()
            self._access_log = bound if bound.is_enabled_for(logging.INFO) else None
        return self._access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope["headers"])
        request_id_text = request_id.decode()
        scope.setdefault("state", {})["request_id"] = request_id_text
        bound = REQUEST_ID.set(request_id_text)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the answer has begun: nothing better to do than drop the connection
                raise
            await _unhandled_problem(exc)(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            elapsed = time.perf_counter() - started
            self._histogram(route, scope["method"], status or 500).observe(elapsed)
            access_log = self._logger()
            if access_log is not None:
                access_log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status or 500,
                    ms=round(elapsed * 1000, 2),
                )
            REQUEST_ID.reset(bound)


class BearerAuthentication:
    """`scope["state"]["principal"]`: the principal of the bearer token, or None."""

    def __init__(self, app: ASGIApp, authority: TokenAuthority) -> None:
        self.app = app
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            principal = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    principal = self.authority.identify_header(value)
                    break
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
