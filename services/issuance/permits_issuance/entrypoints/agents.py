"""The Faust side: one agent per consumed topic, timers for deadlines, production and expiry,
and the HTTP server as a Faust task in the same event loop.

Every agent reads raw bytes through `event_batches` (decode, dead-letter poison, skip event ids
already taken on, leave out the event types the agent ignores). An event whose handler fails
with a non-transient error is dead-lettered too, so one bad event never stops the stream;
outages (store, broker) are retried without skipping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust

from permits_common.events import topics
from permits_common.events.envelope import Event
from permits_common.events.models import DeadLetter
from permits_common.logs import get_logger
from permits_common.metrics import EVENTS_CONSUMED
from permits_common.ordering import handle_by_subject
from permits_common.streams import event_batches, faust_app, raw_topic, retry_forever
from permits_common.web.app import serve_embedded
from permits_issuance.entrypoints.http import build_http_app
from permits_issuance.runtime import SERVICE, IssuanceRuntime

log = get_logger("agents")
EventHandler = Callable[[Event[Any], bool], Awaitable[None]]
"""Handles one event; the flag says whether it was claimed before (a redelivery)."""
BatchStep = Callable[
    ["IssuanceRuntime", Sequence[Event[Any]], set[str]], Awaitable[tuple[set[str], set[str]]]
]
"""Handles part of a batch together first: returns the ids it handled and those it tried."""


def build_faust_app(runtime: IssuanceRuntime, *, serve_http: bool = True) -> faust.App:
    """The worker's app: agents, timers and (optionally) the embedded HTTP server."""
    settings = runtime.settings
    app = faust_app(
        SERVICE,
        settings,
        app_id=settings.issuance_group,
        consumer_auto_offset_reset=settings.issuance_offset_reset,
    )

    _consume(
        app,
        runtime,
        topics.APPLICATIONS,
        "applications",
        runtime.handle_application_event,
        relevant=runtime.wants_application_event,
        together=_decide_together,
    )
    _consume(
        app,
        runtime,
        topics.CARDS,
        "cards",
        _first_time_or_not(runtime.register.handle_card_event),
        relevant=runtime.register.wants_card_event,
    )
    _consume(
        app, runtime, topics.CALENDAR, "calendar", _first_time_or_not(runtime.handle_calendar_event)
    )

    _every(app, runtime, settings.deadline_scan_seconds, "deadline_timer", runtime.deadline_pass)
    _every(
        app,
        runtime,
        settings.production_scan_seconds,
        "production_timer",
        runtime.production.retry_due,
    )
    _every(app, runtime, settings.expiry_scan_seconds, "expiry_timer", runtime.expiry_pass)

    async def first_pass() -> None:
        """Catch up at start-up instead of waiting a full interval."""
        await retry_forever(runtime.ensure_started)
        await _guarded("startup_pass", runtime.timer_pass)

    app.task(first_pass)

    if serve_http:

        async def http_server() -> None:
            await serve_embedded(build_http_app(runtime), settings.host, settings.issuance_port)

        app.task(http_server)

    return app


async def _decide_together(
    runtime: IssuanceRuntime, batch: Sequence[Event[Any]], again: set[str]
) -> tuple[set[str], set[str]]:
    """Decide the batch's fresh acceptances in one go (see `ApprovalService.
    handle_fresh_batch`); returns the ids handled and the ids tried. When the batch step
    fails for another reason than an outage, its events are handled again one by one, as
    redeliveries (each step is keyed, so what the batch did is found, not done twice), and
    only an event that fails alone is dead-lettered."""
    fresh = runtime.fresh_acceptances(batch, again)
    if not fresh:
        return set(), set()
    tried = {event.id for event in fresh}
    accepted = [event.data for event in fresh]
    try:
        async with runtime.handling():
            await retry_forever(lambda: runtime.approval.handle_fresh_batch(accepted))
    except Exception as exc:
        if runtime.stopping:
            raise
        log.warning("batch of acceptances refused, one by one", error=repr(exc)[:300])
        return set(), tried
    return tried, tried


def _first_time_or_not(handler: Callable[[Event[Any]], Awaitable[None]]) -> EventHandler:
    """A handler that does the same whether or not the event was claimed before."""

    async def handle(event: Event[Any], redelivered: bool) -> None:
        await handler(event)

    return handle


def _consume(
    app: faust.App,
    runtime: IssuanceRuntime,
    topic_name: str,
    short: str,
    handler: EventHandler,
    *,
    relevant: Callable[[Event[Any]], bool] | None = None,
    together: BatchStep | None = None,
) -> None:
    consumer = f"{runtime.settings.issuance_group}:{short}"

    async def agent(stream: Any) -> None:
        await retry_forever(runtime.ensure_started)
        batches = event_batches(
            stream,
            service=SERVICE,
            consumer=consumer,
            publisher=runtime.publisher,
            processed=runtime.processed(short),
            relevant=relevant,
        )
        async for batch in batches:
            again = set(batch.again)
            done: set[str] = set()
            if together is not None:
                done, tried = await together(runtime, batch, again)
                again |= tried - done

            async def handle_one(event: Event[Any], again: set[str] = again) -> None:
                async def run(e: Event[Any]) -> None:
                    await handler(e, e.id in again)

                await _handle(runtime, consumer, event, run)

            await handle_by_subject([ev for ev in batch if ev.id not in done], handle_one)

    app.agent(raw_topic(app, topic_name), name=f"issuance.{short}")(agent)


async def _handle(
    runtime: IssuanceRuntime,
    consumer: str,
    event: Event[Any],
    handler: Callable[[Event[Any]], Awaitable[None]],
) -> None:
    try:
        async with runtime.handling():
            await retry_forever(lambda: handler(event))
    except Exception as exc:
        if runtime.stopping:
            raise
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.error("event refused, dead-lettered", type=event.type, error=error[:300])
        EVENTS_CONSUMED.labels(SERVICE, event.topic, "deadletter").inc()
        await retry_forever(
            lambda: runtime.publisher.publish(
                runtime.publisher.event(
                    DeadLetter(
                        original_topic=event.topic,
                        original_key=event.subject,
                        original_value=event.to_json().decode(),
                        consumer=consumer,
                        error=error,
                    )
                )
            )
        )


def _every(
    app: faust.App,
    runtime: IssuanceRuntime,
    seconds: float,
    name: str,
    job: Callable[[], Awaitable[int]],
) -> None:
    async def tick() -> None:
        if runtime.stopping:
            return
        await retry_forever(runtime.ensure_started)
        async with runtime.handling():
            await _guarded(name, job)

    app.timer(seconds, name=f"issuance.{name}")(tick)


async def _guarded(name: str, job: Callable[[], Awaitable[int]]) -> None:
    """A failing pass is logged and tried again at the next tick; the timer keeps running."""
    try:
        await retry_forever(job)
    except Exception as exc:
        log.error("timer pass failed", timer=name, error=repr(exc)[:300])
