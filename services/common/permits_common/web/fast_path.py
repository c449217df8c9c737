"""Routes whose usual request skips FastAPI's per-request parameter and dependency resolution.

FastAPI validates a route's declared parameters and runs its dependencies on every request;
for a small, hot endpoint (verification) that is about half of the request's CPU. A fast-path
route keeps its declaration, which is still its OpenAPI contract and still serves every request
the fast path declines, and first offers each request to a plain function that reads the scope
itself. The function answers only requests it can judge without FastAPI (the caller's role is
right, the parameters plainly valid) and returns None for anything else, so bad input, a
missing token or a wrong role get the same problem documents as before. A `ProblemError` it
raises is answered by the app's problem handler, as from an endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

FastPath = Callable[[Scope], Awaitable[Response | None]]
"""The answer to a request it can judge from the scope alone, or None to decline it."""


def fast_path_route(fast_path: FastPath) -> type[APIRoute]:
    """A route class (for `add_api_route(..., route_class_override=...)`) that offers each
    request of its methods to `fast_path` before the declared endpoint."""

    class FastPathRoute(APIRoute):
        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            if self.methods and scope["method"] in self.methods:
                response = await fast_path(scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
            await super().handle(scope, receive, send)

    return FastPathRoute
