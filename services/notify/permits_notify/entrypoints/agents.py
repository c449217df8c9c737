"""The Faust side of notify: one agent per consumed topic, the dispatch timer, the HTTP task.

Agents read raw bytes and go through `event_batches` (decode, dead-letter, drop a repeat
within a batch; no claim, see `needs_claim`);
each batch is handled at once (what it adds appended together), and sending happens in dispatch
passes, started right after a batch (kick) and every `dispatch_interval_seconds` by the timer,
so a slow channel never holds up a partition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from fastapi import FastAPI

from permits_common.events import topics
from permits_common.events.envelope import Event
from permits_common.events.models import DeadLetter
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher
from permits_common.logs import get_logger
from permits_common.metrics import EVENTS_CONSUMED
from permits_common.mongo import ProcessedEvents
from permits_common.ordering import handle_by_subject
from permits_common.streams import event_batches, faust_app, raw_topic, retry_forever
from permits_common.web.app import serve_embedded
from permits_notify.config import NotifySettings
from permits_notify.service.notifier import DispatchKicker, NotificationService, needs_claim

log = get_logger("notify.agents")

SERVICE = "notify"
CONSUMED_TOPICS = (topics.APPLICATIONS, topics.SLA, topics.CARDS)


def build_faust_app(
    settings: NotifySettings,
    *,
    service: NotificationService,
    publisher: EventPublisher,
    processed: ProcessedEvents,
    http_app: FastAPI,
    on_shutdown: Callable[[], Awaitable[None]],
) -> faust.App:
    """The worker app; its consumer group is `PERMITS_NOTIFY_GROUP`."""
    app = faust_app(
        SERVICE,
        settings,
        app_id=settings.notify_group,
        consumer_auto_offset_reset=settings.notify_offset_reset,
    )
    kicker = DispatchKicker(service.send_queued)
    wants = service.wants

    async def handle_one(event: Event[Any]) -> None:
        try:
            await retry_forever(lambda: service.handle(event))
        except Exception as exc:
            log.exception("event refused, dead-lettered", type=event.type, event_id=event.id)
            EVENTS_CONSUMED.labels(SERVICE, event.topic, "deadletter").inc()
            dead = DeadLetter(
                original_topic=event.topic,
                original_key=event.subject,
                original_value=event.to_json().decode(),
                consumer=settings.notify_group,
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            await retry_forever(lambda: publisher.publish(publisher.event(dead)))

    async def handle_batch(batch: list[Event[Any]]) -> None:
        """The whole batch at once; if that fails for a reason other than an outage, event by
        event, so only the event that cannot be handled is dead-lettered (handling is
        idempotent, so the events already written are written again as no-ops)."""
        try:
            await retry_forever(lambda: service.handle_batch(batch))
        except Exception:
            log.warning("batch refused, handling its events one by one", events=len(batch))
            await handle_by_subject(batch, handle_one)

    def make_agent(topic_name: str) -> Callable[[Any], Awaitable[None]]:
        async def consume(stream: Any) -> None:
            async for batch in event_batches(
                stream,
                service=SERVICE,
                consumer=settings.notify_group,
                publisher=publisher,
                processed=processed,
                relevant=wants,
                needs_claim=needs_claim,
            ):
                await handle_batch(batch)
                kicker.kick()

        consume.__name__ = f"consume_{topic_name.replace('.', '_')}"
        return consume

    for topic_name in CONSUMED_TOPICS:
        app.agent(raw_topic(app, topic_name), name=f"notify.{topic_name}")(make_agent(topic_name))

    async def dispatch_tick() -> None:
        try:
            await service.dispatch_due()
        except TRANSIENT_ERRORS as exc:
            log.warning("dispatch pass skipped", error=type(exc).__name__)
        except Exception:
            log.exception("dispatch pass failed; the next tick tries again")

    app.timer(interval=settings.dispatch_interval_seconds, name="notify.dispatch")(dispatch_tick)

    async def serve_http() -> None:
        await serve_embedded(http_app, settings.host, settings.notify_port)

    app.task(serve_http)

    async def shutdown(*_args: Any, **_kwargs: Any) -> None:
        await on_shutdown()

    app.on_before_shutdown.connect(shutdown)
    return app
