"""Kafka on aiokafka: topic creation, an idempotent event publisher and a deduplicating consumer.

Delivery is at least once end to end; "nothing done twice" comes from consumers skipping event
ids they have handled and from producers re-emitting derived facts with deterministic ids.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    OutOfOrderSequenceNumber,
    TopicAlreadyExistsError,
    UnknownProducerId,
)

from permits_common.events import topics
from permits_common.events.envelope import Event, PoisonMessageError, decode, new_event
from permits_common.events.models import DeadLetter, EventData
from permits_common.logs import get_logger
from permits_common.metrics import EVENTS_CONSUMED, EVENTS_PUBLISHED
from permits_common.mongo import TRANSIENT_STORE_ERRORS, Delivered, ProcessedEvents
from permits_common.ordering import handle_by_subject
from permits_common.partition_batches import KeyedRecord, publish_keyed
from permits_common.settings import CommonSettings

log = get_logger("kafka")

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    KafkaConnectionError,
    KafkaError,
    *TRANSIENT_STORE_ERRORS,
    asyncio.TimeoutError,
    ConnectionError,
)


def connection_options(settings: CommonSettings) -> dict[str, Any]:
    """Bootstrap and security options shared by producers, consumers and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ca_file)
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


async def ensure_topics(
    settings: CommonSettings, specs: Iterable[topics.TopicSpec] = topics.TOPICS
) -> None:
    """Create the catalog's topics that do not exist yet (local stack and tests)."""
    if not settings.kafka_manage_topics:
        return
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in specs
            if spec.name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


async def kafka_reachable(settings: CommonSettings, wait_seconds: float = 2.0) -> bool:
    """True when the broker answers a metadata request now (for `/readyz`)."""
    admin = AIOKafkaAdminClient(
        **connection_options(settings), request_timeout_ms=int(wait_seconds * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), wait_seconds)
        await asyncio.wait_for(admin.list_topics(), wait_seconds)
    except Exception:
        return False
    finally:
        await admin.close()
    return True


PRODUCER_STATE_LOST: tuple[type[Exception], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
)
"""The broker no longer agrees with the idempotent producer's sequence numbers (seen after a
broker restart with sends in flight). That producer never recovers; a new one does."""


class EventPublisher:
    """Publishes events with an idempotent producer (acks=all), keyed by subject."""

    def __init__(
        self,
        settings: CommonSettings,
        source: str,
        *,
        linger_ms: int = 2,
        max_batch_bytes: int = 16384,
    ) -> None:
        """`max_batch_bytes` bounds one record batch: the producer holds one batch per
        partition at a time, so a publisher of many records per partition at once (tens of
        thousands of feed events and audit entries) waits one broker round trip per batch
        unless its batches are large."""
        self.source = source
        self._settings = settings
        self._linger_ms = linger_ms
        self._max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()

    async def _connected_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **connection_options(self._settings),
            enable_idempotence=True,
            acks="all",
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_bytes,
            request_timeout_ms=10_000,
        )
        await producer.start()
        return producer

    async def start(self) -> None:
        """Connect; retried by the caller while the broker is down."""
        self._producer = await self._connected_producer()

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        """Replace a producer whose sequence state the broker lost (once, however many sends
        saw it fail); the old one stays in place until the new one is connected."""
        async with self._renewing:
            current = self._producer
            if current is None or current is not broken:
                return
            self._producer = await self._connected_producer()
            log.warning("producer state lost on the broker; replaced the producer")
        with contextlib.suppress(Exception):
            await current.stop()

    async def stop(self) -> None:
        """Flush and close."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def producer(self) -> AIOKafkaProducer:
        """The underlying producer, for raw sends (benchmarks, dead letters)."""
        if self._producer is None:
            raise RuntimeError("publisher not started")
        return self._producer

    def event(self, data: EventData, *, event_id: str | None = None) -> Event[Any]:
        """An envelope from this service."""
        return new_event(data, source=self.source, event_id=event_id)

    async def publish(self, event: Event[Any]) -> None:
        """Send one event and wait until the broker has it."""
        await self.publish_all([event])

    async def publish_all(
        self, events: Sequence[Event[Any]], *, exclude_none: bool = False
    ) -> None:
        """Send many events in one go (batched by the producer) and wait for all of them;
        `exclude_none` leaves empty optional fields out of the JSON (see `Event.to_json`)."""
        if not events:
            return
        producer = self.producer
        try:
            futures = [
                await producer.send(
                    event.topic, event.to_json(exclude_none=exclude_none), key=event.key
                )
                for event in events
            ]
            await asyncio.gather(*futures)
        except PRODUCER_STATE_LOST:
            await self._renew(producer)
            raise
        for event in events:
            EVENTS_PUBLISHED.labels(self.source, event.topic).inc()

    async def publish_records(self, records: Sequence[KeyedRecord]) -> None:
        """Send ready-made records (topic, key, value) in batches per partition and wait for
        all of them: for tens of thousands at once (see `partition_batches`)."""
        producer = self.producer
        try:
            await publish_keyed(producer, records)
        except PRODUCER_STATE_LOST:
            await self._renew(producer)
            raise
        for topic, count in collections.Counter(topic for topic, _, _ in records).items():
            EVENTS_PUBLISHED.labels(self.source, topic).inc(count)

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], consumer: str, error: str
    ) -> None:
        """Move an unprocessable message aside with the reason, so its consumer can go on."""
        await self.publish(self.event(dead_letter_data(record, consumer, error)))


def dead_letter_data(record: Any, consumer: str, error: str) -> DeadLetter:
    """Describe a raw Kafka record (aiokafka or Faust) that could not be processed."""
    key = record.key.decode("utf-8", "replace") if record.key else ""
    value = record.value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return DeadLetter(
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        original_key=key,
        original_value=str(value)[:100_000],
        consumer=consumer,
        error=error[:2000],
    )


Handler = Callable[[Event[Any]], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event[Any]]], Awaitable[None]]


class ConsumerLoop:
    """The life of a consumer-group member: consume until `stop()`, start again from the
    committed (or stored) position after a store or broker outage, leave the group cleanly.
    Subclasses say what one connected run does (`_run_once`)."""

    def __init__(self, group_id: str) -> None:
        self._group_id = group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Consume until `stop()`; reconnects after broker outages."""
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("consumer interrupted, retrying", group=self._group_id, error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                await self._close()

    async def stop(self) -> None:
        """Ask the loop to finish its current batch and leave the group."""
        self._stopping.set()

    async def _close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(KafkaError):
                await consumer.stop()

    async def _run_once(self) -> None:
        raise NotImplementedError


def unclaimed_ids(
    events: Sequence[Event[Any]], needs_claim: Callable[[Event[Any]], bool] | None
) -> set[str]:
    """The ids of the events a consumer hands out without a claim (`needs_claim` declines
    them; every event is claimed without one)."""
    if needs_claim is None:
        return set()
    return {event.id for event in events if not needs_claim(event)}


class EventConsumer(ConsumerLoop):
    """A consumer group member that decodes, deduplicates and hands events to a handler.

    What one fetch returns (every assigned partition's records, and what arrives within
    `linger_seconds` after the first) is one batch: claimed with one store command before it
    is handled (see `ProcessedEvents`), its offsets committed only after it is handled, so a
    crash redelivers rather than loses, and the claim hands the redelivered records out again.
    Poison messages and events the handler keeps refusing go to the dead-letter topic; a store
    or broker outage is retried without skipping anything.

    `handler` takes one event (called per subject in order, several subjects at once);
    `batch_handler` instead takes the fresh events of a batch, in order within each partition
    (so within each subject), and a
    batch it keeps refusing is handed to it again one event at a time, so only the bad event
    is dead-lettered.

    `needs_claim` says which events must be claimed; an event it declines is one whose
    handling is keyed so that doing it again changes nothing (an append keyed by the event),
    and is handed over without a claim, sparing the store a document per event.
    """

    def __init__(
        self,
        settings: CommonSettings,
        *,
        service: str,
        group_id: str,
        subscribe: Sequence[str],
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        publisher: EventPublisher,
        processed: ProcessedEvents,
        max_attempts: int = 3,
        offset_reset: Literal["earliest", "latest"] = "earliest",
        linger_seconds: float = 0.05,
        needs_claim: Callable[[Event[Any]], bool] | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        super().__init__(group_id)
        self._settings = settings
        self._offset_reset = offset_reset
        self._service = service
        self._topics = list(subscribe)
        self._handler = handler
        self._batch_handler = batch_handler
        self._publisher = publisher
        self._processed = processed
        self._max_attempts = max_attempts
        self._linger_seconds = linger_seconds
        self._needs_claim = needs_claim

    async def _run_once(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._topics,
            **connection_options(self._settings),
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._offset_reset,
            max_poll_records=500,
        )
        self._consumer = consumer
        await consumer.start()
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if batches and self._linger_seconds:
                # Events of one application arrive on several topics within milliseconds:
                # waiting a moment makes one batch (one claim, one append) of them.
                await asyncio.sleep(self._linger_seconds)
                for partition, more in (await consumer.getmany(timeout_ms=0)).items():
                    batches.setdefault(partition, []).extend(more)
            if batches:
                await self._handle_batches(consumer, batches)

    async def _handle_batches(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Claim, handle and commit the records of one fetch, all partitions together."""
        records = [record for part in batches.values() for record in part]
        decoded: list[tuple[ConsumerRecord[bytes, bytes], Event[Any]]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value or b"")))
            except PoisonMessageError as exc:
                await self._dead_letter(record, str(exc))
        claimed = await self._processed.claim(
            [Delivered(event.id, r.topic, r.partition, r.offset) for r, event in decoded],
            unclaimed_ids([event for _, event in decoded], self._needs_claim),
        )
        fresh: dict[str, ConsumerRecord[bytes, bytes]] = {}
        events: list[Event[Any]] = []
        for record, event in decoded:
            if event.id not in claimed.handle or event.id in fresh:
                EVENTS_CONSUMED.labels(self._service, record.topic, "duplicate").inc()
                continue
            fresh[event.id] = record
            events.append(event)
        if not await self._handled_as_batch(events):
            await handle_by_subject(
                events, lambda event: self._handle_with_retries(fresh[event.id], event)
            )
        await consumer.commit({tp: part[-1].offset + 1 for tp, part in batches.items() if part})

    async def _handled_as_batch(self, events: list[Event[Any]]) -> bool:
        """Hand the whole batch to the batch handler; False when there is none or it kept
        refusing the batch."""
        if self._batch_handler is None:
            return False
        if not events:
            return True
        handler = self._batch_handler
        refusal = await self._with_retries(lambda: handler(events))
        if refusal is not None:
            log.warning("batch refused, handling its events one by one", error=repr(refusal))
            return False
        for event in events:
            EVENTS_CONSUMED.labels(self._service, event.topic, "processed").inc()
        return True

    async def _with_retries(self, work: Callable[[], Awaitable[None]]) -> Exception | None:
        """Run `work` until it succeeds: outages (store or broker) are waited out with backoff,
        other errors retried `max_attempts` times in all; the last such error, or None."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await work()
            except TRANSIENT_ERRORS:
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            except Exception as exc:
                if attempt < self._max_attempts:
                    await asyncio.sleep(0.1 * attempt)
                    continue
                return exc
            return None

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: Event[Any]
    ) -> None:
        refusal = await self._with_retries(lambda: self._handle_one(event))
        if refusal is not None:
            log.error("event refused, dead-lettered", type=event.type, error=repr(refusal))
            await self._dead_letter(record, f"{type(refusal).__name__}: {refusal}")
            return
        EVENTS_CONSUMED.labels(self._service, record.topic, "processed").inc()

    async def _handle_one(self, event: Event[Any]) -> None:
        if self._handler is not None:
            await self._handler(event)
        elif self._batch_handler is not None:
            await self._batch_handler([event])

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str) -> None:
        EVENTS_CONSUMED.labels(self._service, record.topic, "deadletter").inc()
        await self._publisher.dead_letter(record, self._group_id, error)
