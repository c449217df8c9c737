"""Routes whose usual request skips FastAPI's per-request work: its inner layers (exception
middleware, exit stack), route matching, and parameter and dependency resolution.

For a small, hot endpoint (verification) that was most of the request's CPU. A fast-path route
keeps its declaration, which is still its OpenAPI contract and still serves every request the
fast path declines. The shared layers (`permits_common.web.middleware.SharedLayers`), once the
request id and principal are known and with the access log and metrics around it, first offer
each request for the route's exact path and method to a plain function that reads the scope
itself. The function answers only requests it can judge without FastAPI (the caller's role is
right, the parameters plainly valid) and returns None for anything else, so bad input, a
missing token or a wrong role get the same problem documents as before. A `ProblemError` it
raises is answered as the app's problem handler answers it; anything else it raises gets the
shared layers' last-resort problem document, as from an endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import Scope

FastPath = Callable[[Scope], Awaitable[Response | None]]
"""The answer to a request it can judge from the scope alone, or None to decline it."""

FastPathTable = dict[tuple[str, str], tuple[APIRoute, FastPath]]
"""Each fast-path route and its function by (method, path): `create_app` keeps one per app in
`app.state.fast_paths`, and `SharedLayers` offers each request found in it to the function."""


def add_fast_path_route(
    app: FastAPI, path: str, endpoint: Callable[..., Any], fast_path: FastPath, **route: Any
) -> None:
    """Declare a route on the app's own router (`add_api_route`'s arguments) and offer each
    request of its methods for exactly `path` to `fast_path` first."""
    app.router.add_api_route(path, endpoint, **route)
    declared = app.router.routes[-1]
    assert isinstance(declared, APIRoute)
    table: FastPathTable = app.state.fast_paths  # create_app's
    for method in declared.methods or ():
        table[method, path] = (declared, fast_path)
