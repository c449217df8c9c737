"""Faust (faust-streaming) wiring shared by the stream services: issuance, rights and notify.

Topics are read as raw bytes and decoded with the shared envelope, so every service applies the
same rules: a poison message goes to the dead-letter topic and the stream goes on; an event id
already taken on by this consumer is skipped; one store command per batch finds them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from permits_common.events.envelope import Event, PoisonMessageError, decode
from permits_common.fetch_watchdog import install_fetch_watchdog
from permits_common.kafka import (
    TRANSIENT_ERRORS,
    EventPublisher,
    dead_letter_data,
    unclaimed_ids,
)
from permits_common.logs import get_logger
from permits_common.metrics import EVENTS_CONSUMED
from permits_common.mongo import Delivered, ProcessedEvents
from permits_common.settings import CommonSettings
from permits_common.shutdown import arm_exit_deadline

log = get_logger("streams")


class BoundedWorker(faust.Worker):
    """A Faust worker whose stop on SIGTERM/SIGINT ends within `grace_seconds`.

    It lives here rather than beside the uvicorn one in `permits_common.shutdown` because only the
    stream services install Faust: intake, audit and the console must import without it.
    """

    def __init__(self, *args: Any, grace_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grace_seconds = grace_seconds

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        arm_exit_deadline(self._grace_seconds)
        super()._schedule_shutdown(signal)


def _faust_datadir() -> str:
    """Where Faust keeps its table folder: FAUST_DATADIR, else a folder of the temporary one.

    Faust makes that folder even for memory tables (but not its parents); outside a container
    (tests, the local stack) its default would land in the working folder.
    """
    configured = os.environ.get("FAUST_DATADIR")
    if configured:
        return configured
    parent = os.path.join(tempfile.gettempdir(), "permits-faust")
    os.makedirs(parent, exist_ok=True)
    return os.path.join(parent, "{conf.name}-data")


def faust_app(
    service: str, settings: CommonSettings, *, app_id: str | None = None, **options: Any
) -> faust.App:
    """A Faust app for one service: memory tables backed by changelog topics, no Faust web.

    `app_id` (the consumer group) defaults to `permits-<service>`; tests pass a unique one.
    """
    credentials: Any = None
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl.create_default_context(cafile=settings.kafka_ca_file)
            if settings.kafka_security_protocol == "SASL_SSL"
            else None,
        )
    elif settings.kafka_security_protocol == "SSL":
        credentials = faust.SSLCredentials(
            ssl.create_default_context(cafile=settings.kafka_ca_file)
        )
    brokers = ";".join(f"kafka://{host}" for host in settings.kafka_bootstrap.split(","))
    defaults: dict[str, Any] = {
        "broker": brokers,
        "broker_credentials": credentials,
        "store": "memory://",
        "web_enabled": False,
        "datadir": _faust_datadir(),
        "topic_partitions": 4,
        "topic_replication_factor": settings.kafka_replication_factor,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        # Offsets are committed once a second; a count that ends the wait earlier only adds
        # commit requests (a crash redelivers at most a second of events, which the claims
        # hand out again).
        "broker_commit_every": 10_000,
        "broker_commit_interval": 1.0,
        "stream_wait_empty": False,
        # A crashed worker's partitions move to a live one after this long (Faust's default is
        # 60 s, a minute of silence after every kill -9); heartbeats keep live ones well inside.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
    }
    defaults.update(options)
    app = faust.App(app_id or f"permits-{service}", **defaults)
    install_fetch_watchdog(app, service)
    return app


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose keys and values reach agents as the bytes on the wire."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


class EventBatch(list[Event[Any]]):
    """Events to handle, in Kafka order; `again` holds the ids claimed before (redelivered
    after a crash or a rebalance), whose handlers must check what is already done."""

    def __init__(self, events: list[Event[Any]], again: set[str]) -> None:
        super().__init__(events)
        self.again = again


async def event_batches(
    stream: Any,
    *,
    service: str,
    consumer: str,
    publisher: EventPublisher,
    processed: ProcessedEvents,
    relevant: Callable[[Event[Any]], bool] | None = None,
    needs_claim: Callable[[Event[Any]], bool] | None = None,
    max_batch: int = 200,
    within: float = 0.05,
) -> AsyncIterator[EventBatch]:
    """Decoded events to handle, in batches; poison messages are dead-lettered.

    The batch is claimed (one store command, see `ProcessedEvents`) before it is yielded, and
    Faust commits its offsets only after the loop body finished, so a crash in the middle
    redelivers the same records, which the claim hands out again. Events the consumer ignores
    (`relevant` says no) are neither claimed nor yielded. Events `needs_claim` declines are
    yielded without a claim (once per batch): their handling is keyed by the event, so a
    repeat writes nothing new.
    """
    async for batch in stream.take_events(max_batch, within=within):
        events: list[tuple[Event[Any], Delivered]] = []
        for received in batch:
            message = received.message
            try:
                event = decode(message.value or b"")
            except PoisonMessageError as exc:
                EVENTS_CONSUMED.labels(service, message.topic, "deadletter").inc()
                await retry_forever(
                    lambda m=message, e=exc: publisher.publish(
                        publisher.event(dead_letter_data(m, consumer, str(e)))
                    )
                )
                continue
            if relevant is not None and not relevant(event):
                EVENTS_CONSUMED.labels(service, message.topic, "ignored").inc()
                continue
            events.append(
                (event, Delivered(event.id, message.topic, message.partition, message.offset))
            )
        if not events:
            continue
        claimed = await retry_forever(
            functools.partial(
                processed.claim,
                [d for _, d in events],
                unclaimed_ids([e for e, _ in events], needs_claim),
            )
        )
        fresh: list[Event[Any]] = []
        for event, _ in events:
            if event.id not in claimed.handle:
                EVENTS_CONSUMED.labels(service, event.topic, "duplicate").inc()
                continue
            claimed.handle.discard(event.id)
            fresh.append(event)
        if fresh:
            yield EventBatch(fresh, claimed.again)
            for event in fresh:
                EVENTS_CONSUMED.labels(service, event.topic, "processed").inc()


async def retry_forever(operation: Any) -> Any:
    """Retry an outage-sensitive step with capped backoff: never skip, never lose."""
    delay = 0.2
    while True:
        try:
            return await operation()
        except TRANSIENT_ERRORS as exc:
            log.warning("dependency unavailable, retrying", error=type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
