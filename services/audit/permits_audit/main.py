"""The audit FastAPI app and its process entry point."""

from __future__ import annotations

from fastapi import FastAPI

from permits_audit.config import AuditSettings
from permits_audit.entrypoints.http import build_router
from permits_audit.runtime import AuditRuntime
from permits_common.web.app import create_app, run_service, runtime_lifespan

DESCRIPTION = """The audit trail: every read or change of personal data by a clerk, operator or
agency, and every verification answer, kept append-only in a SHA-256 hash chain for at least
six months. Operators read the trail of one application or card and check the chain."""


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The app with its runtime; consuming starts with the lifespan."""
    settings = settings or AuditSettings()
    runtime = AuditRuntime(settings)
    app = create_app(
        service="audit",
        title="Permits audit",
        description=DESCRIPTION,
        settings=settings,
        checks={"store": runtime.store_ready, "kafka": runtime.kafka_ready},
        lifespan=runtime_lifespan(runtime),
    )
    app.state.runtime = runtime
    app.include_router(build_router(runtime))
    return app


def main() -> None:
    """`python -m permits_audit`: serve on PERMITS_HOST:PERMITS_AUDIT_PORT."""
    settings = AuditSettings()
    run_service(settings, settings.audit_port, lambda: build_app(settings))
