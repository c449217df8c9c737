"""A watchdog for a Faust worker whose consumer was given a partition it never fetches.

After a rebalance, faust-streaming with aiokafka can leave a newly assigned partition without a
single fetch request while the worker's other partitions are fetched as usual (an open upstream
bug, faust-streaming issue #629; Faust itself only logs "has not sent fetch request ... since
start"). The events of that partition then wait for good: in the two-replica fault test, a
quarter of the applications were never decided after one issuance replica was killed. The
worker cannot repair its consumer from outside, so the watchdog ends the process (the local
runner and Kubernetes start it again, and its partitions move to a live replica meanwhile); the
services are built to lose nothing on a kill.

Only that signature counts: a partition never fetched since it was assigned, for longer than
`NEVER_FETCHED_SECONDS`, while another partition of the same consumer was fetched within the
last `LIVE_FETCH_SECONDS`. A broker outage (no partition fetched) or a busy agent (its
partitions were fetched before their buffers filled) does not match it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import faust

from permits_common.logs import get_logger

log = get_logger("fetch-watchdog")

NEVER_FETCHED_SECONDS = 60.0
LIVE_FETCH_SECONDS = 15.0
CHECK_SECONDS = 5.0
FAUST_LEADER_TOPIC_SUFFIX = "__assignor-__leader"
"""Faust's own topic for electing the group's leader, which carries no events to fetch."""
EXIT_CODE = 70
"""EX_SOFTWARE: the process ends on purpose, to be started again."""


def never_fetched(
    last_fetch: Mapping[Any, float | None],
    assigned_since: Mapping[Any, float],
    now: float,
    *,
    never_fetched_seconds: float = NEVER_FETCHED_SECONDS,
    live_fetch_seconds: float = LIVE_FETCH_SECONDS,
) -> list[Any]:
    """The partitions stuck without a first fetch while the consumer fetches others.

    `last_fetch` holds each assigned partition's last fetch time (None: never since assigned),
    `assigned_since` when each was first seen assigned; times in seconds on one clock."""
    if not any(at is not None and now - at <= live_fetch_seconds for at in last_fetch.values()):
        return []
    return [
        tp
        for tp, at in last_fetch.items()
        if at is None and now - assigned_since.get(tp, now) > never_fetched_seconds
    ]


def install_fetch_watchdog(app: faust.App, service: str) -> None:
    """Check the worker's consumer every few seconds; end the process on the signature."""
    assigned_since: dict[Any, float] = {}

    async def watch() -> None:
        states = None if app.rebalancing else _fetch_states(app)
        if states is None:
            return
        now = time.time()
        for tp in list(assigned_since):
            if tp not in states:
                del assigned_since[tp]
        for tp in states:
            assigned_since.setdefault(tp, now)
        stuck = never_fetched(states, assigned_since, now)
        if stuck:
            log.error(
                "partitions assigned but never fetched; ending the worker to start it again",
                service=service,
                partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in stuck),
            )
            os._exit(EXIT_CODE)

    app.timer(interval=CHECK_SECONDS, name=f"{service}.fetch_watchdog")(watch)


def _fetch_states(app: faust.App) -> dict[Any, float | None] | None:
    """Each assigned partition's last fetch time in seconds (None: never), read from the
    aiokafka consumer inside Faust's consumer thread; None while there is none."""
    try:
        consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        assignment = consumer._fetcher._subscriptions.subscription.assignment
    except Exception:  # not started, or between assignments: nothing to judge yet
        return None
    if assignment is None or not assignment.active:
        return None
    states: dict[Any, float | None] = {}
    for tp in assignment.tps:
        if tp.topic.endswith(FAUST_LEADER_TOPIC_SUFFIX):
            continue
        state = assignment.state_value(tp)
        stamp = getattr(state, "timestamp", None)
        states[tp] = stamp / 1000 if stamp else None
    return states
