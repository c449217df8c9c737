"""The audit FastAPI app and its process entry point."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from permits_audit.config import AuditSettings
from permits_audit.entrypoints.http import build_router
from permits_audit.runtime import AuditRuntime
from permits_common.logs import configure_logging
from permits_common.shutdown import BoundedServer
from permits_common.web.app import create_app

DESCRIPTION = """The audit trail: every read or change of personal data by a clerk, operator or
agency, and every verification answer, kept append-only in a SHA-256 hash chain for at least
six months. Operators read the trail of one application or card and check the chain."""


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The app with its runtime; consuming starts with the lifespan."""
    settings = settings or AuditSettings()
    runtime = AuditRuntime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = create_app(
        service="audit",
        title="Permits audit",
        description=DESCRIPTION,
        settings=settings,
        checks={"store": runtime.store_ready, "kafka": runtime.kafka_ready},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.include_router(build_router(runtime))
    return app


def main() -> None:
    """`python -m permits_audit`: serve on PERMITS_HOST:PERMITS_AUDIT_PORT."""
    settings = AuditSettings()
    configure_logging(settings.log_level, settings.json_logs)
    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.audit_port,
        log_level="warning",
        access_log=False,
    )
    BoundedServer(config, grace_seconds=settings.shutdown_grace_seconds).run()
