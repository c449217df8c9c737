"""The shared request pipeline as one plain ASGI callable: no task, stream or Request object of
its own per request (Starlette's `BaseHTTPMiddleware` costs an extra task and a memory stream
for every request and every layer), and one frame instead of one per concern.

`SharedLayers`, outside FastAPI's own layers, does for every request:

- the request id: taken from a well-formed `X-Request-ID`, else made here; echoed on the answer,
  left in `scope["state"]["request_id"]` and bound to every log line of the request;
- who is calling: the bearer token's principal, looked up once and left in
  `scope["state"]["principal"]` (a `Principal`, or None) for the route's role check and for
  anything else that needs the actor (audit records);
- the fast paths (`permits_common.web.fast_path`): a request for a fast-path route is offered
  to its function before FastAPI sees it;
- the latency histogram, the access log line, and the last-resort problem document for an
  error nothing else handled (500, or 503 with Retry-After for an unreachable store or broker).

Both headers are found in one pass over the request's headers. What can be worked out once is:
the token table is built at start-up, and each (route, method, status) resolves its histogram
child once and then comes from a dict.

Request ids are made with `random.getrandbits`, not `os.urandom`: they name a request in logs
and answers, nothing more (a caller may send its own), so they need to be unique, not
unguessable; 96 bits from the process's generator (seeded from the OS, reseeded in a forked
child) are, and cost less than a system call (0.2 µs, against 0.5).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from random import getrandbits
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from permits_common.kafka import TRANSIENT_ERRORS
from permits_common.logs import REQUEST_ID, get_logger
from permits_common.metrics import HTTP_REQUEST_SECONDS
from permits_common.web.auth import TokenAuthority
from permits_common.web.fast_path import FastPathTable
from permits_common.web.problems import (
    RETRY_AFTER_SECONDS,
    ProblemError,
    ProblemResponse,
    problem_body,
    problem_response,
)

REQUEST_ID_HEADER = b"x-request-id"
_AUTHORIZATION_HEADER = b"authorization"
_well_formed_request_id = re.compile(rb"[A-Za-z0-9._:-]{1,64}").fullmatch
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
UNMATCHED_ROUTE = "unmatched"

log = get_logger("http")
_UNDECIDED = object()
"""The access log before the first request has decided whether lines are written."""


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


class SharedLayers:
    """Request id, principal, fast paths, latency histogram, access log and last-resort problem
    details, around the app."""

    def __init__(
        self, app: ASGIApp, *, service: str, authority: TokenAuthority, fast_paths: FastPathTable
    ) -> None:
        self.app = app
        self.service = service
        self.authority = authority
        self._fast_paths = fast_paths
        self._histograms: dict[tuple[str, str, int], Any] = {}
        self._access_log: Any = _UNDECIDED

    def _new_histogram(self, route: str, method: str, status: int) -> Any:
        """The histogram child of a (route, method, status) not seen before."""
        child = HTTP_REQUEST_SECONDS.labels(
            self.service,
            route,
            method if method in _METHODS else "OTHER",
            _STATUS_CLASSES.get(status // 100, "other"),
        )
        self._histograms[route, method, status] = child
        return child

    def _decide_access_log(self) -> Any:
        """The access log's logger, bound once on the first request (after the process set its
        logging up): through the module's lazy proxy, a line below the configured level cost a
        microsecond of lookups per request. None when the level drops access lines, which
        spares every request the line's arguments as well (a few microseconds)."""
        bound = log.bind()
        self._access_log = bound if bound.is_enabled_for(logging.INFO) else None
        return self._access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:  # the first of each counts
            if name == _AUTHORIZATION_HEADER:
                if authorization is None:
                    authorization = value
            elif name == REQUEST_ID_HEADER and request_id is None:
                request_id = value
        if request_id is not None and _well_formed_request_id(request_id):
            request_id_text = request_id.decode()
        else:
            request_id_text = getrandbits(96).to_bytes(12, "big").hex()
            request_id = request_id_text.encode()
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id_text
        state["principal"] = (
            None if authorization is None else self.authority.identify_header(authorization)
        )
        bound = REQUEST_ID.set(request_id_text)
        echoed = (REQUEST_ID_HEADER, request_id)
        status = 0

        def send_with_id(message: Message) -> Awaitable[None]:
            # a plain function handing back send's awaitable: no coroutine of its own per message
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            return send(message)

        method = scope["method"]
        try:
            fast = self._fast_paths.get((method, scope["path"]))
            if fast is None or scope.get("root_path"):
                await self.app(scope, receive, send_with_id)
            else:
                route, fast_path = fast
                scope["route"] = route  # the metrics' route label, as route matching sets it
                try:
                    response = await fast_path(scope)
                except ProblemError as exc:
                    response = problem_response(exc)
                if response is None:
                    await self.app(scope, receive, send_with_id)
                else:
                    await response(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the answer has begun: nothing better to do than drop the connection
                raise
            await _unhandled_problem(exc)(scope, receive, send_with_id)
        finally:
            elapsed = perf_counter() - started
            route_path = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            status = status or 500
            histogram = self._histograms.get((route_path, method, status))
            if histogram is None:
                histogram = self._new_histogram(route_path, method, status)
            histogram.observe(elapsed)
            access_log = self._access_log
            if access_log is _UNDECIDED:
                access_log = self._decide_access_log()
            if access_log is not None:
                access_log.info(
                    "request",
                    method=method,
                    route=route_path,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            REQUEST_ID.reset(bound)
