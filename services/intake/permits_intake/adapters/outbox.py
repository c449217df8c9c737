"""The outbox relay: puts events stored inside application documents onto Kafka.

FerretDB has no transactions, so an accepted application and its event are written as one
document; this relay publishes what is unpublished (in batches), then marks it published. Event
ids were fixed when stored, so publishing twice after a crash sends the same ids and consumers
drop the repeat. Woken by `signal()` right after each write; a slow sweep catches leftovers from
other replicas or from a previous process.
"""

from __future__ import annotations

import asyncio
import contextlib
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

    def signal(self) -> None:
        """Something was written to an outbox: publish it now."""
        self._wake.set()

    async def run(self) -> None:
        """Drain at start (leftovers of a previous process), then whenever woken; retries
        with backoff while the store or Kafka is unreachable."""
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self.drain()
                failures = 0
            except TRANSIENT_ERRORS as exc:
                failures += 1
                log.warning("outbox relay waiting for Kafka or the store", error=type(exc).__name__)
                await asyncio.sleep(min(0.2 * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)

    async def drain(self) -> int:
        """Publish every unpublished entry; returns how many events went out."""
        sent = 0
        while True:
            documents = await self._store.unpublished(self._batch_size)
            if not documents:
                return sent
            events = [event for doc in documents for event in self._decoded(doc)]
            await self._publisher.publish_all(events)
            await self._store.mark_published(documents)
            sent += len(events)
            if len(documents) < self._batch_size:
                return sent

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
