"""The outbox relay: puts events stored inside application documents onto Kafka.

FerretDB has no transactions, so an accepted application and its event are written as one
document. The document is never touched again for the event's sake: what tells the relay, and
after a crash any replica, which events may still be unpublished is a small ledger of batch
tokens (`outbox_batches`), one document per token, not a flag on each application.

- A token is recorded in the ledger before the relay hands it out, and every application is
  stored with the token current at its insert (`outbox_batch`, indexed). The relay hands out a
  new token about once a second while it is in use, and never one older than
  `TOKEN_MAX_AGE_SECONDS`.
- The writer tells the relay what it stored (`signal`); the relay publishes it from memory, in
  batches. A retired token whose every insert has ended and whose every stored event is on
  Kafka is settled: its ledger document is deleted. That is the only store work the relay does
  per token, and it does none per application: clearing a flag rewrote each document under all
  its indexes, most of intake's store time per submission.
- An insert that ends without an answer (the store went away, the request was cancelled) may
  have stored its document all the same, so its token is left open. So is every token of a
  process that crashed. A sweep publishes every event stored under an open token older than
  `TOKEN_SETTLE_AGE_SECONDS` (by then nothing can still be written with it), then settles it;
  at start-up it publishes the events of all open tokens at once.

Event ids were fixed when stored, so publishing twice sends the same ids and consumers drop the
repeat. Documents stored by earlier versions carry an `outbox_pending` flag instead; the start-up
sweep and the periodic one still publish and clear those.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
"""How old a flagged event (of an earlier version's document) must be before a periodic sweep
sends it: younger ones are still in this or another replica's relay."""
TOKEN_SECONDS = 1.0
"""How long a token in use is handed out before the relay moves to a new one."""
TOKEN_MAX_AGE_SECONDS = 10.0
"""No insert starts with a token older than this: the relay records a new one first."""
TOKEN_SETTLE_AGE = timedelta(seconds=60)
"""When a sweep may settle an open token: its last insert started before
`TOKEN_MAX_AGE_SECONDS` and has ended (the store client's timeouts are shorter than the rest)."""


@dataclass(slots=True)
class _Token:
    """A batch token this relay handed out, from its recording until it is settled."""

    id: str
    opened: float
    writes: int = 0
    in_flight: int = 0
    unpublished: int = 0
    uncertain: bool = False


class OutboxRelay:
    """Publishes the events it is handed, settles their tokens, and sweeps for what is left."""

    def __init__(
        self,
        store: IntakeStore,
        publisher: EventPublisher,
        *,
        clock: Clock | None = None,
        batch_size: int = 500,
        sweep_seconds: float = 5.0,
        token_seconds: float = TOKEN_SECONDS,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock or Clock()
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._token_seconds = token_seconds
        self._wake = asyncio.Event()
        self._pending: dict[str, OutboxDocument] = {}
        self._tokens: dict[str, _Token] = {}
        self._current: _Token | None = None
        self._opening = asyncio.Lock()

    @property
    def held_tokens(self) -> frozenset[str]:
        """The tokens this relay handed out and has not settled or left to the sweep."""
        return frozenset(self._tokens)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[str]:
        """The token to store one application with, held for the length of its insert. An
        insert that raises (or is cancelled) may still have stored its document, so its token
        is left open for the sweep."""
        token = await self._token_for_write()
        token.writes += 1
        token.in_flight += 1
        try:
            yield token.id
        except BaseException:
            token.uncertain = True
            raise
        finally:
            token.in_flight -= 1
            if token is not self._current:
                self._wake.set()

    def signal(self, application_id: str, entries: Sequence[Document], batch: str) -> None:
        """These outbox entries were just stored with the application, under this batch
        token: publish them now."""
        token = self._tokens.get(batch)
        if token is not None:
            token.unpublished += 1
        self._pending[application_id] = OutboxDocument(application_id, list(entries), batch)
        self._wake.set()

    async def _token_for_write(self) -> _Token:
        current = self._current
        if current is not None and time.monotonic() - current.opened < TOKEN_MAX_AGE_SECONDS:
            return current
        async with self._opening:
            current = self._current
            if current is None or time.monotonic() - current.opened >= TOKEN_MAX_AGE_SECONDS:
                current = await self._open_token()
            return current

    async def _open_token(self) -> _Token:
        """Record a new token in the ledger, then hand it out instead of the current one."""
        token = _Token(_new_batch_token(), time.monotonic())
        await self._store.open_outbox_batch(token.id, _real_now())
        self._tokens[token.id] = token
        self._current = token
        return token

    async def run(self) -> None:
        """Sweep everything at start (leftovers of a previous process), then publish what is
        signalled, move to a new token about once a second, settle the tokens that are done,
        and sweep for old leftovers whenever nothing was signalled for a while; retries with
        backoff while the store or Kafka is unreachable."""
        failures = 0
        last_sweep: float | None = None
        while True:
            self._wake.clear()
            try:
                if last_sweep is None or time.monotonic() - last_sweep >= self._sweep_seconds:
                    await self._sweep(starting=last_sweep is None)
                    last_sweep = time.monotonic()
                await self.drain_signalled()
                await self._rotate()
                await self.settle()
                failures = 0
            except TRANSIENT_ERRORS as exc:
                failures += 1
                log.warning("outbox relay waiting for Kafka or the store", error=type(exc).__name__)
                await asyncio.sleep(min(0.2 * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)

    async def _rotate(self) -> None:
        """Hand out a new token once the current one has been in use for a while."""
        current = self._current
        if (
            current is not None
            and current.writes
            and time.monotonic() - current.opened >= self._token_seconds
        ):
            async with self._opening:
                if self._current is current:
                    await self._open_token()

    async def settle(self) -> int:
        """Delete from the ledger every retired token of this relay whose inserts have all
        ended and whose stored events are all on Kafka; how many were settled. A token with an
        insert that ended without an answer is dropped here but left open for the sweep."""
        settled = 0
        for token in list(self._tokens.values()):
            if token is self._current or token.in_flight or token.unpublished:
                continue
            if not token.uncertain:
                await self._store.settle_outbox_batch(token.id)
                settled += 1
            del self._tokens[token.id]
        return settled

    async def drain_signalled(self) -> int:
        """Publish the outboxes of the applications signalled so far."""
        sent = 0
        while self._pending:
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
            for document in batch:
                token = self._tokens.get(document.batch or "")
                if token is not None:
                    token.unpublished -= 1
        return sent

    async def _sweep(self, *, starting: bool) -> int:
        """Publish what earlier processes (or lost answers) left behind: at start-up everything
        left, afterwards what is old enough that no relay still holds it."""
        sent = await self.drain_batches(_real_now() - TOKEN_SETTLE_AGE, publish_younger=starting)
        now = self._clock.now()
        return sent + await self.drain(now if starting else now - SWEEP_MIN_AGE)

    async def drain_batches(self, settle_before: datetime, *, publish_younger: bool) -> int:
        """Publish the events stored under every open token this relay does not hold, and
        settle those opened before `settle_before`; younger ones are published only when
        `publish_younger` (at start-up) and stay open. How many events went out."""
        sent = 0
        async for token, opened_at in self._store.open_outbox_batches():
            if token in self._tokens:
                continue
            settle = opened_at < settle_before
            if not (settle or publish_younger):
                continue
            batch: list[OutboxDocument] = []
            async for document in self._store.outbox_of_batch(token):
                batch.append(document)
                if len(batch) == self._batch_size:
                    sent += await self._publish(batch)
                    batch = []
            sent += await self._publish(batch)
            if settle:
                await self._store.settle_outbox_batch(token)
        return sent

    async def drain(self, created_before: datetime) -> int:
        """Sweep the documents of earlier versions, flagged `outbox_pending`: publish those
        stored before the given time, then clear them; how many events went out."""
        sent = 0
        batch: list[OutboxDocument] = []
        async for document in self._store.unpublished(created_before):
            batch.append(document)
            if len(batch) == self._batch_size:
                sent += await self._publish(batch)
                await self._clear(batch)
                batch = []
        sent += await self._publish(batch)
        await self._clear(batch)
        return sent

    async def _publish(self, documents: list[OutboxDocument]) -> int:
        """Publish the documents' events."""
        events = [event for doc in documents for event in self._decoded(doc)]
        await self._publisher.publish_all(events)
        return len(events)

    async def _clear(self, documents: list[OutboxDocument]) -> None:
        """Drop flagged documents' events and flags: one command per batch token, and one per
        document stored without a token."""
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


def _real_now() -> datetime:
    """The ledger's time: the machine's, not the business clock that tests and demos move (a
    token's age bounds how long an insert can still use it)."""
    return datetime.now(UTC)


def _new_batch_token() -> str:
    """A token no other batch of any replica has."""
    return uuid.uuid4().hex
