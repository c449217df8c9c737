"""The outbox relay: puts events stored inside application documents onto Kafka.

FerretDB has no transactions, so an accepted application and its event are written as one
document; this relay publishes what is waiting there (in batches), then removes exactly what
went out. Event ids were fixed when stored, so publishing twice after a crash sends the same ids
and consumers drop the repeat. `signal(application_id)` right after each write hands it the
documents to look at (by primary key); a slow sweep of the collection catches leftovers from
other replicas or from a previous process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from permits_common.events.envelope import Event, PoisonMessageError, decode
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher
from permits_common.logs import get_logger
from permits_intake.adapters.store import IntakeStore, OutboxDocument

log = get_logger("outbox")

MAX_BACKOFF_SECONDS = 5.0


class OutboxRelay:
    """Drains unpublished outbox entries whenever signalled, and on a slow sweep."""

    def __init__(
        self,
        store: IntakeStore,
        publisher: EventPublisher,
        *,
        batch_size: int = 500,
        sweep_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self._pending: set[str] = set()

    def signal(self, application_id: str) -> None:
        """An event was written to this application's outbox: publish it now."""
        self._pending.add(application_id)
        self._wake.set()

    async def run(self) -> None:
        """Sweep at start (leftovers of a previous process), then publish what is signalled,
        sweeping again whenever nothing was signalled for a while; retries with backoff while
        the store or Kafka is unreachable."""
        failures = 0
        last_sweep: float | None = None
        while True:
            self._wake.clear()
            try:
                if last_sweep is None or time.monotonic() - last_sweep >= self._sweep_seconds:
                    await self.drain()
                    last_sweep = time.monotonic()
                await self.drain_signalled()
                failures = 0
            except TRANSIENT_ERRORS as exc:
                failures += 1
                log.warning("outbox relay waiting for Kafka or the store", error=type(exc).__name__)
                await asyncio.sleep(min(0.2 * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)

    async def drain_signalled(self) -> int:
        """Publish the outboxes of the applications signalled so far."""
        sent = 0
        while self._pending:
            batch = [self._pending.pop() for _ in range(min(len(self._pending), self._batch_size))]
            try:
                sent += await self._publish(await self._store.outboxes(batch))
            except BaseException:
                self._pending.update(batch)
                raise
        return sent

    async def drain(self) -> int:
        """Sweep: publish every outbox entry in the collection; how many events went out."""
        sent = 0
        while True:
            documents = await self._store.unpublished(self._batch_size)
            if not documents:
                return sent
            sent += await self._publish(documents)
            if len(documents) < self._batch_size:
                return sent

    async def _publish(self, documents: list[OutboxDocument]) -> int:
        events = [event for doc in documents for event in self._decoded(doc)]
        await self._publisher.publish_all(events)
        await self._store.mark_published(documents)
        return len(events)

    @staticmethod
    def _decoded(document: OutboxDocument) -> list[Event[Any]]:
        found: list[Event[Any]] = []
        for value in document.events:
            try:
                found.append(decode(value))
            except PoisonMessageError as exc:
                log.error(
                    "unreadable outbox entry skipped",
                    application_id=document.application_id,
                    error=str(exc),
                )
        return found
