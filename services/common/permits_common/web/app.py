"""The common shape of every service's HTTP side: ops endpoints, auth, problems, metrics, and
how uvicorn serves it (uvloop, httptools: the same for every service and the benchmarks'
reference server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

import uvicorn
import uvloop
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.types import ASGIApp, Lifespan

from permits_common.heap import settle_heap
from permits_common.logs import configure_logging
from permits_common.metrics import exposition
from permits_common.settings import CommonSettings
from permits_common.shutdown import BoundedServer
from permits_common.web.auth import TokenAuthority
from permits_common.web.fast_path import FastPathTable
from permits_common.web.middleware import SharedLayers
from permits_common.web.openapi import RETRY_AFTER, install_openapi
from permits_common.web.problems import JsonResponse, install_problem_handlers

ReadinessCheck = Callable[[], Awaitable[bool]]


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether each dependency answered."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unreachable"]]


def install_ops_routes(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    """`/healthz` (process up), `/readyz` (dependencies reachable), `/metrics` (Prometheus).

    Declared on the app itself rather than through an included router: FastAPI resolves an
    included router's routes through one more level on every request.
    """
    router = app.router

    @router.get("/healthz", summary="The process is up", tags=["ops"])
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        summary="Kafka and the store are reachable",
        response_model=Readiness,
        responses={
            503: {
                "model": Readiness,
                "description": "A dependency is unreachable",
                "headers": RETRY_AFTER,
            }
        },
        tags=["ops"],
    )
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

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
        tags=["ops"],
    )
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    settings: CommonSettings,
    checks: Mapping[str, ReadinessCheck],
    lifespan: Lifespan[Any] | None = None,
    version: str = "1.0.0",
    api_document: bool = True,
) -> FastAPI:
    """A FastAPI app with the shared ops endpoints, token auth, problem-details errors, request
    ids, access logs and latency metrics; JSON answers are rendered with orjson. With
    `api_document`, the OpenAPI document at `/openapi.json` and its pages at `/docs`. FastAPI's
    own OpenTelemetry is off: the platform's metrics are Prometheus (`SharedLayers`), and
    the check whether a provider is configured cost every request a few environment lookups."""
    app = FastAPI(
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        default_response_class=JsonResponse,
        openapi_url="/openapi.json" if api_document else None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_ops_routes(app, checks)
    install_openapi(app)
    fast_paths: FastPathTable = {}
    app.state.fast_paths = fast_paths
    app.add_middleware(
        SharedLayers,
        service=service,
        authority=TokenAuthority(settings.tokens),
        fast_paths=fast_paths,
    )
    return app


def server_config(
    app: ASGIApp, host: str, port: int, *, lifespan: Literal["on", "off"] = "on"
) -> uvicorn.Config:
    """How every HTTP server of the platform runs: uvloop and httptools, no access log of
    uvicorn's own (`SharedLayers` writes one without query strings), no `Server` header,
    and no proxy-header rewriting (nothing uses the client address)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan=lifespan,
    )


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Run a server as the whole process (until SIGINT/SIGTERM)."""
    uvicorn.Server(server_config(app, host, port)).run()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop of a process that embeds the HTTP server (the Faust workers): uvloop, and so
    is every loop the process makes afterwards, such as the one of Faust's consumer thread
    (the policy is set for the whole process)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.new_event_loop()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process (e.g. a Faust worker)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


async def serve_embedded(app: FastAPI, host: str, port: int) -> None:
    """Serve an app inside an already running event loop until cancelled. Without a lifespan:
    the host process owns the resources, and a lifespan task cancelled with the worker's
    tasks made uvicorn log a CancelledError traceback at ERROR on every stop."""
    server = _EmbeddedServer(server_config(app, host, port, lifespan="off"))
    try:
        await server.serve()
    finally:
        server.should_exit = True


@contextlib.asynccontextmanager
async def no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """A lifespan that does nothing, for apps whose resources live elsewhere."""
    yield


class ServiceRuntime(Protocol):
    """What an HTTP service runs beside its routes (consumers, producers, timers)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def runtime_lifespan(runtime: ServiceRuntime) -> Lifespan[Any]:
    """A lifespan that starts the runtime with the app and stops it after the last request."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return lifespan


def run_service(settings: CommonSettings, port: int, build: Callable[[], ASGIApp]) -> None:
    """The whole process of an HTTP service: logging as configured, then the app `build` makes,
    served on PERMITS_HOST:`port` until SIGTERM, stopped within the grace period. What the
    process holds once the app is built is frozen out of the garbage collector's reach
    (`settle_heap`)."""
    configure_logging(settings.log_level, settings.json_logs)
    config = server_config(build(), settings.host, port)
    settle_heap()
    BoundedServer(config, grace_seconds=settings.shutdown_grace_seconds).run()
