"""Run the issuance worker: `python -m permits_issuance`.

One process is one Faust worker (consumer group `PERMITS_ISSUANCE_GROUP`) that also serves the
HTTP API on `PERMITS_ISSUANCE_PORT` from a Faust task, in the same event loop.

The topics are created before the worker starts: faust-streaming 0.15.3 logs "Ignoring missing
topic" for an agent topic that does not exist when it subscribes, and never consumes it later
(observed against Kafka 3.9.1), so a worker started on a fresh broker would sit idle.
"""

from __future__ import annotations

import asyncio
from typing import Any

from permits_common.heap import settle_heap
from permits_common.kafka import ensure_topics
from permits_common.logs import configure_logging
from permits_common.streams import BoundedWorker, retry_forever
from permits_common.web.app import new_event_loop
from permits_issuance.config import IssuanceSettings
from permits_issuance.entrypoints.agents import build_faust_app
from permits_issuance.runtime import IssuanceRuntime


def main() -> None:
    """Build the runtime and the Faust app, then hand the process to a Faust worker."""
    settings = IssuanceSettings()
    configure_logging(settings.log_level, settings.json_logs)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(retry_forever(lambda: ensure_topics(settings)))
    runtime = IssuanceRuntime(settings)
    app = build_faust_app(runtime)

    async def close_runtime(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        await runtime.stop()

    app.on_before_shutdown.connect(close_runtime)

    worker = BoundedWorker(
        app,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
        loop=loop,
        grace_seconds=settings.shutdown_grace_seconds,
    )
    settle_heap()
    worker.execute_from_commandline()
