"""Running the real intake app against the shared Kafka and store, and watching its topics.

Nothing here is a mock: the app talks to the real broker and FerretDB; tests isolate themselves
with their own database, consumer group and people.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from permits_common.clock import Clock
from permits_common.events.envelope import Event, decode
from permits_common.kafka import connection_options, ensure_topics
from permits_common.mongo import mongo_client
from permits_common.settings import development_tokens
from permits_intake.config import IntakeSettings
from permits_intake.main import build_app
from permits_intake.runtime import CONSUMED_TOPICS

CLERK = {"Authorization": "Bearer dev-clerk"}
OPS = {"Authorization": "Bearer dev-ops"}
LIXIA_CLERK = {"Authorization": "Bearer lixia-clerk"}
AGENCY = {"Authorization": "Bearer dev-agency-hotel"}


def intake_settings(infrastructure: dict[str, str], **overrides: Any) -> IntakeSettings:
    """Settings for one isolated intake: own database and consumer group, quick sweeps."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "env": "test",
        "kafka_bootstrap": infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        "mongo_url": infrastructure["PERMITS_MONGO_URL"],
        "mongo_database": f"permits_test_{suffix}",
        "intake_group": f"permits-intake-test-{suffix}",
        "tokens": {**development_tokens(), "lixia-clerk": "clerk:LIXIA"},
        "outbox_sweep_seconds": 1.0,
    }
    values.update(overrides)
    return IntakeSettings(**values)


async def skip_history(settings: IntakeSettings, group: str, topics: Iterable[str]) -> None:
    """Commit the end of every partition for a new consumer group, so a test's views start from
    now instead of replaying everything other tests ever published on the shared broker."""
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(await _partitions(consumer, topic))
        ]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no partitions")


@dataclass
class RunningIntake:
    """An intake app with its lifespan running, and a client talking to it in process."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: IntakeSettings
    clock: Clock


@contextlib.asynccontextmanager
async def running_intake(
    settings: IntakeSettings,
    *,
    wait_ready: bool = True,
    skip: bool = True,
    drop_database: bool = True,
) -> AsyncIterator[RunningIntake]:
    """Start the app's lifespan (Kafka, store, relay, consumer) and serve it over ASGI;
    the test database is dropped afterwards unless another instance still uses it."""
    if skip:
        await skip_history(settings, settings.intake_group, CONSUMED_TOPICS)
    clock = Clock()
    app = build_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            if wait_ready:
                await wait_until_ready(client)
            yield RunningIntake(app, client, settings, clock)
        store_was_used = app.state.runtime.store_prepared.is_set()
    if drop_database and store_was_used:
        cleaner = mongo_client(settings)
        try:
            await cleaner.drop_database(settings.mongo_database)
        finally:
            await cleaner.close()


async def wait_until_ready(client: httpx.AsyncClient, within: float = 40.0) -> None:
    """Poll `/readyz` until the store and Kafka are both reachable."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("intake did not become ready")


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    """Retry an async check until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


class TopicTap:
    """Reads a topic from the moment it was opened, without a consumer group."""

    def __init__(self, settings: IntakeSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self.events: list[Event[Any]] = []

    async def __aenter__(self) -> TopicTap:
        consumer = AIOKafkaConsumer(**connection_options(self._settings), enable_auto_commit=False)
        await consumer.start()
        partitions = [
            TopicPartition(self._topic, p) for p in await _partitions(consumer, self._topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._consumer = consumer
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def collect(self, seconds: float) -> None:
        """Read whatever arrives for a while."""
        assert self._consumer is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(Exception):
                        self.events.append(decode(record.value or b""))

    async def wait_for(
        self, match: Callable[[Event[Any]], bool], within: float = 30.0
    ) -> Event[Any]:
        """The first event (seen so far or arriving) that matches."""
        deadline = time.monotonic() + within
        while True:
            for event in self.events:
                if match(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError("expected event not published")
            await self.collect(0.3)

    def matching(self, match: Callable[[Event[Any]], bool]) -> list[Event[Any]]:
        """Every event seen so far that matches."""
        return [event for event in self.events if match(event)]
