"""Wiring of one audit process: store, trail writer and consumer, periodic check and pruning.

Start-up never blocks on Kafka or the store: they are retried in the background while
`/healthz` answers and `/readyz` says 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from permits_audit.adapters.store import TrailStore
from permits_audit.config import AuditSettings
from permits_audit.entrypoints.consumer import TrailConsumer
from permits_audit.service.metrics import CHAIN_BROKEN, CHAIN_CHECKED_AT, RETENTION_REMOVED
from permits_audit.service.trail import Retention, TrailReader, TrailWriter
from permits_common.events.topics import TopicSpec
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher, ensure_topics, kafka_reachable
from permits_common.logs import get_logger
from permits_common.mongo import mongo_client, ping

log = get_logger("audit")
SOURCE = "/permits/audit"


async def retry_forever(operation: Callable[[], Awaitable[Any]]) -> Any:
    """Retry a start-up step through store or broker outages, with capped backoff."""
    delay = 0.2
    while True:
        try:
            return await operation()
        except TRANSIENT_ERRORS as exc:
            log.warning("dependency unavailable, retrying", error=type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class AuditRuntime:
    """Everything one audit process runs."""

    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings
        self.client = mongo_client(settings)
        self.store = TrailStore(self.client[settings.mongo_database])
        self.publisher = EventPublisher(settings, SOURCE)
        self.writer = TrailWriter(self.store)
        self.reader = TrailReader(self.store)
        self.retention = Retention(self.store, settings.audit_retention_days)
        self.consumer = TrailConsumer(
            settings,
            topic=settings.audit_topic,
            group_id=settings.audit_group,
            writer=self.writer,
            publisher=self.publisher,
            offset_reset=settings.audit_offset_reset,
        )
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        """Connect in the background; the HTTP side serves at once."""
        self._tasks.append(asyncio.create_task(self._start(), name="audit-start"))

    async def _start(self) -> None:
        await retry_forever(self.store.create_indexes)
        await retry_forever(self._ensure_topic)
        await retry_forever(self.publisher.start)
        self._tasks.append(asyncio.create_task(self.consumer.run(), name="audit-consumer"))
        self._every(self.settings.audit_check_seconds, self.check_chain, "audit-check")
        self._every(self.settings.audit_prune_seconds, self.prune, "audit-prune")
        self.started.set()

    async def _ensure_topic(self) -> None:
        await ensure_topics(
            self.settings,
            [TopicSpec(self.settings.audit_topic, "subject", "The audit trail.")],
        )

    def _every(self, seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception as exc:
                    log.error("periodic job failed", job=name, error=repr(exc)[:300])

        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def check_chain(self) -> None:
        """The periodic integrity check behind the chain-broken alert."""
        entries, broken = await self.reader.verify()
        CHAIN_BROKEN.set(1 if broken else 0)
        CHAIN_CHECKED_AT.set(time.time())
        if broken is not None:
            log.error("audit chain broken", entry=broken.entry_id, reason=broken.reason)
        else:
            log.info("audit chain intact", entries=entries)

    async def prune(self) -> int:
        """Remove entries past retention."""
        removed = await self.retention.prune(datetime.now(UTC))
        RETENTION_REMOVED.inc(removed)
        return removed

    async def stop(self) -> None:
        """Leave the group, cancel background work, close connections."""
        await self.consumer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.publisher.stop()
        await self.client.close()

    async def kafka_ready(self) -> bool:
        """Readiness: the broker answers."""
        return await kafka_reachable(self.settings)

    async def store_ready(self) -> bool:
        """Readiness: the store answers and start-up has finished."""
        return self.started.is_set() and await ping(self.store.database)
