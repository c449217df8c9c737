"""The intake FastAPI app and its process entry point."""

from __future__ import annotations

from fastapi import FastAPI

from permits_common.clock import Clock
from permits_common.web.app import create_app, run_service, runtime_lifespan
from permits_intake.config import IntakeSettings
from permits_intake.entrypoints.api import build_router
from permits_intake.entrypoints.staff_api import build_staff_router
from permits_intake.runtime import IntakeRuntime

DESCRIPTION = """Acceptance points take applications for Hong Kong, Macao and Taiwan residents'
residence permits, answer status to clerks, operators and applicants, record lost and revoked
cards, and load the yearly holiday arrangement. Errors are RFC 9457 problem details."""


def build_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The app with its runtime; connecting to Kafka and the store starts with the lifespan."""
    settings = settings or IntakeSettings()
    runtime = IntakeRuntime(settings, clock)
    app = create_app(
        service="intake",
        title="Permits intake",
        description=DESCRIPTION,
        settings=settings,
        checks={"store": runtime.store_reachable, "kafka": runtime.kafka_ready},
        lifespan=runtime_lifespan(runtime),
    )
    app.state.runtime = runtime
    app.include_router(build_router(settings.dev_endpoints_enabled))
    app.include_router(build_staff_router())
    return app


def run() -> None:
    """`python -m permits_intake`: serve on PERMITS_HOST:PERMITS_INTAKE_PORT."""
    settings = IntakeSettings()
    run_service(settings, settings.intake_port, lambda: build_app(settings))
