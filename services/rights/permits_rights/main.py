"""`python -m permits_rights`: the Faust worker with the HTTP API served inside it."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import faust
from fastapi import FastAPI

from permits_common.kafka import ensure_topics
from permits_common.logs import configure_logging, get_logger
from permits_common.streams import BoundedWorker, faust_app, retry_forever
from permits_common.web.app import create_app, new_event_loop, no_lifespan, serve_embedded
from permits_rights.adapters.register_changelog import register_topic_spec
from permits_rights.config import RightsSettings
from permits_rights.entrypoints.http import install_routes
from permits_rights.entrypoints.stream import install_agent
from permits_rights.service.runtime import Runtime

DESCRIPTION = (
    "Holder status for downstream agencies: per-agency feeds and webhooks with only the fields "
    "each may see, and the verification API of contract.md."
)
log = get_logger("rights")


def build_api(runtime: Runtime) -> FastAPI:
    """The HTTP app: shared ops endpoints plus the rights API."""
    api = create_app(
        service="rights",
        title="Rights service",
        description=DESCRIPTION,
        settings=runtime.settings,
        checks={
            "kafka": runtime.kafka_ready,
            "store": runtime.store_ready,
            "register": runtime.register_ready,
        },
        lifespan=no_lifespan,
    )
    install_routes(api, runtime)
    return api


def build(settings: RightsSettings) -> tuple[faust.App, Runtime, FastAPI]:
    """The Faust app with the cards agent, the runtime it drives, and the HTTP app."""
    app = faust_app(
        "rights",
        settings,
        app_id=settings.rights_group,
        consumer_auto_offset_reset=settings.rights_offset_reset,
    )
    runtime = Runtime(settings)
    install_agent(app, runtime)

    async def stop_runtime(_app: Any, **_kwargs: Any) -> None:
        await runtime.stop()

    app.on_before_shutdown.connect(stop_runtime)  # type: ignore[arg-type]
    return app, runtime, build_api(runtime)


async def create_topics(settings: RightsSettings) -> None:
    """Faust does not pick up a topic created after it subscribed, so every topic must exist
    before the worker starts (the catalog and the register changelog)."""
    await retry_forever(lambda: ensure_topics(settings))
    await retry_forever(
        lambda: ensure_topics(settings, [register_topic_spec(settings.register_topic)])
    )


async def start(runtime: Runtime, api: FastAPI) -> None:
    """Serve HTTP at once (`/healthz` while the register loads), then start the runtime.

    Started on the worker's loop directly rather than as a Faust task, which only runs after
    the first consumer-group rebalance (seconds, or a session timeout after a crash).
    """
    settings = runtime.settings
    runtime.spawn(serve_embedded(api, settings.host, settings.rights_port), "http")
    runtime.on_task_exit("http", _http_stopped)
    await runtime.start()


def _http_stopped() -> None:
    """Without its API the service is useless (e.g. the port is taken): stop the worker."""
    log.error("HTTP server stopped; shutting down")
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    """Run until SIGINT/SIGTERM."""
    settings = RightsSettings()
    configure_logging(settings.log_level, settings.json_logs)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(create_topics(settings))
    app, runtime, api = build(settings)
    starting = loop.create_task(start(runtime, api))
    worker = BoundedWorker(
        app,
        loop=loop,
        loglevel="warn",
        redirect_stdouts=False,
        grace_seconds=settings.shutdown_grace_seconds,
    )
    worker.execute_from_commandline()
    del starting
