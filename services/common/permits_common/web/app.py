"""The common shape of every service's HTTP side: ops endpoints, auth, problems, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.types import Lifespan

from permits_common.metrics import HTTP_REQUEST_SECONDS, exposition
from permits_common.settings import CommonSettings
from permits_common.web.auth import TokenAuthority
from permits_common.web.problems import JsonResponse, install_problem_handlers

ReadinessCheck = Callable[[], Awaitable[bool]]


def ops_router(checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """`/healthz` (process up), `/readyz` (dependencies reachable), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Kafka and the store are reachable", response_model=None)
    async def readyz() -> JsonResponse:
        names = list(checks)
        results = await asyncio.gather(*(checks[name]() for name in names))
        status = {
            name: "ok" if ok else "unreachable" for name, ok in zip(names, results, strict=True)
        }
        ready = all(results)
        return JsonResponse(
            {"status": "ready" if ready else "not_ready", "checks": status},
            status_code=200 if ready else 503,
            headers={} if ready else {"Retry-After": "5"},
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return router


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    settings: CommonSettings,
    checks: Mapping[str, ReadinessCheck],
    lifespan: Lifespan[Any] | None = None,
    version: str = "1.0.0",
) -> FastAPI:
    """A FastAPI app with the shared ops endpoints, token auth and problem-details errors."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
    )
    app.state.token_authority = TokenAuthority(settings.tokens)
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(ops_router(checks))

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        HTTP_REQUEST_SECONDS.labels(
            service, template, request.method, f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response

    return app


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process (e.g. a Faust worker)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


async def serve_embedded(app: FastAPI, host: str, port: int) -> None:
    """Serve an app inside an already running event loop until cancelled."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = _EmbeddedServer(config)
    try:
        await server.serve()
    finally:
        server.should_exit = True


@contextlib.asynccontextmanager
async def no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """A lifespan that does nothing, for apps whose resources live elsewhere."""
    yield
