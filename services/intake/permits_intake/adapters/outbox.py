"""The outbox relay: puts events stored inside application documents onto Kafka.

FerretDB has no transactions, so an accepted application and its event are written as one
document, flagged `outbox_pending` and tagged with the relay's current batch token
(`outbox_batch`). The writer hands the relay the event it has just stored (`signal`), and the
relay publishes it from memory, in batches, then clears event and flag of the whole batch with
one store command per token: an indexed equality on the token, narrowed to the applications
whose events it has just published (so a document this relay never heard of, such as an
insert whose answer was lost, keeps its flag). The token changes at every batch, so each
clearing touches only the documents of a moment. A sweep of the flagged documents (at start-up,
then every few seconds for those older than half a minute) publishes what a crash or another
replica left behind. Event ids were fixed when stored, so publishing twice sends the same ids
and consumers drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from permits_common.clock import Clock
from permits_common.events.envelope import Event, PoisonMessageError, decode
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher
from permits_common.logs import get_logger
from permits_common.mongo import Document
from permits_intake.adapters.store import IntakeStore, OutboxDocument

log = get_logger("outbox")

MAX_BACKOFF_SECONDS = 5.0
SWEEP_MIN_AGE = timedelta(seconds=30)
"""How old a flagged event must be before a periodic sweep sends it: younger ones are still in
this or another replica's relay."""


class OutboxRelay:
    """Publishes the events it is handed, and sweeps for those left behind."""

    def __init__(
        self,
        store: IntakeStore,
        publisher: EventPublisher,
        *,
        clock: Clock | None = None,
        batch_size: int = 500,
        sweep_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock or Clock()
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self._pending: dict[str, OutboxDocument] = {}
        self._batch = _new_batch_token()

    @property
    def batch(self) -> str:
        """The token to store with an application written now (`outbox_batch`)."""
        return self._batch

    def signal(self, application_id: str, entries: Sequence[Document], batch: str) -> None:
        """These outbox entries were just stored with the application, under this batch
        token: publish them now."""
        self._pending[application_id] = OutboxDocument(application_id, list(entries), batch)
        self._wake.set()

    async def run(self) -> None:
        """Sweep everything at start (leftovers of a previous process), then publish what is
        signalled, sweeping for old leftovers whenever nothing was signalled for a while;
        retries with backoff while the store or Kafka is unreachable."""
        failures = 0
        last_sweep: float | None = None
        while True:
            self._wake.clear()
            try:
                if last_sweep is None or time.monotonic() - last_sweep >= self._sweep_seconds:
                    now = self._clock.now()
                    await self.drain(now if last_sweep is None else now - SWEEP_MIN_AGE)
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
            self._batch = _new_batch_token()
            batch = [
                self._pending.pop(application_id)
                for application_id in list(self._pending)[: self._batch_size]
            ]
            try:
                sent += await self._publish(batch)
            except BaseException:
                for document in batch:
                    self._pending.setdefault(document.application_id, document)
                raise
        return sent

    async def drain(self, created_before: datetime) -> int:
        """Sweep: publish the flagged outbox entries stored before the given time; how many
        events went out."""
        sent = 0
        batch: list[OutboxDocument] = []
        async for document in self._store.unpublished(created_before):
            batch.append(document)
            if len(batch) == self._batch_size:
                sent += await self._publish(batch)
                batch = []
        return sent + await self._publish(batch)

    async def _publish(self, documents: list[OutboxDocument]) -> int:
        """Publish the documents' events, then clear them: one command per batch token, and
        one per document stored without a token (before tokens existed)."""
        events = [event for doc in documents for event in self._decoded(doc)]
        await self._publisher.publish_all(events)
        by_token: dict[str, list[str]] = {}
        untagged: list[str] = []
        for doc in documents:
            if doc.batch is None:
                untagged.append(doc.application_id)
            else:
                by_token.setdefault(doc.batch, []).append(doc.application_id)
        await asyncio.gather(
            self._store.mark_published(untagged),
            *(self._store.mark_batch_published(token, ids) for token, ids in by_token.items()),
        )
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


def _new_batch_token() -> str:
    """A token no other batch of any replica has."""
    return uuid.uuid4().hex
