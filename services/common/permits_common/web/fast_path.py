"""Routes whose usual request skips FastAPI's per-request work: its inner layers (exception
middleware, exit stack), route matching, and parameter and dependency resolution.

For a small, hot endpoint (verification) that was most of the request's CPU. A fast-path route
keeps its declaration, which is still its OpenAPI contract and still serves every request the
fast path declines. `FastPaths`, the innermost of the shared layers (inside the request id,
access log, metrics and authentication), first offers each request for the route's exact path
and method to a plain function that reads the scope itself. The function answers only
requests it can judge without FastAPI (the caller's role is right, the parameters plainly
valid) and returns None for anything else, so bad input, a missing token or a wrong role get
the same problem documents as before. A `ProblemError` it raises is answered as the app's
problem handler answers it; anything else it raises reaches `ObservedRequests`, as from an
endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from permits_common.web.problems import ProblemError, problem_response

FastPath = Callable[[Scope], Awaitable[Response | None]]
"""The answer to a request it can judge from the scope alone, or None to decline it."""


class FastPaths:
    """Each fast-path route's function by (method, path), offered its requests first."""

    def __init__(self, app: ASGIApp, table: dict[tuple[str, str], tuple[APIRoute, FastPath]]):
        self.app = app
        self._table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            entry = self._table.get((scope["method"], scope["path"]))
            if entry is not None:
                route, fast_path = entry
                scope["route"] = route  # the metrics' route label, as route matching sets it
                try:
                    response = await fast_path(scope)
                except ProblemError as exc:
                    response = problem_response(exc)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def add_fast_path_route(
    app: FastAPI, path: str, endpoint: Callable[..., Any], fast_path: FastPath, **route: Any
) -> None:
    """Declare a route on the app's own router (`add_api_route`'s arguments) and offer each
    request of its methods for exactly `path` to `fast_path` first."""
    app.router.add_api_route(path, endpoint, **route)
    declared = app.router.routes[-1]
    assert isinstance(declared, APIRoute)
    table: dict[tuple[str, str], tuple[APIRoute, FastPath]] = app.state.fast_paths  # create_app's
    for method in declared.methods or ():
        table[method, path] = (declared, fast_path)
