"""A stop request ends the process within a bounded time, whatever its dependencies are doing.

Faust and uvicorn stop cleanly when Kafka and the store answer: offsets committed, producers
flushed. With Kafka unreachable, that clean stop waits on a broker that is not there, and the
worker kept running long after SIGTERM (Kubernetes' grace period is 30 s, then SIGKILL). So
the first SIGTERM or SIGINT also arms a deadline: a process still alive when it passes exits
at once. Nothing acknowledged is lost by that: work not yet committed is redelivered by Kafka
and every consumer is idempotent on event id.
"""

from __future__ import annotations

import os
import threading
from types import FrameType

import uvicorn

from permits_common.logs import get_logger

log = get_logger("shutdown")

FORCED_EXIT_CODE = 70
"""Exit code of a stop that outran its deadline (EX_SOFTWARE): a supervisor can tell it apart."""

_deadline: threading.Timer | None = None
_deadline_lock = threading.Lock()


def arm_exit_deadline(grace_seconds: float) -> None:
    """Exit the process `grace_seconds` from the first call, unless it has exited by then."""
    global _deadline
    with _deadline_lock:
        if _deadline is not None:
            return
        _deadline = threading.Timer(grace_seconds, _exit_now, args=(grace_seconds,))
        _deadline.daemon = True
        _deadline.start()


def _exit_now(grace_seconds: float) -> None:
    log.error("clean shutdown did not finish in time, exiting", grace_seconds=grace_seconds)
    os._exit(FORCED_EXIT_CODE)


class BoundedServer(uvicorn.Server):
    """A uvicorn server whose stop on SIGTERM/SIGINT ends within `grace_seconds`."""

    def __init__(self, config: uvicorn.Config, *, grace_seconds: float) -> None:
        super().__init__(config)
        self._grace_seconds = grace_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        arm_exit_deadline(self._grace_seconds)
        super().handle_exit(sig, frame)
