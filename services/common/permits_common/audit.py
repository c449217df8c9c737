"""The audit trail's producer side: every service records who read or changed whose data.

An answer that shows or changes personal data must not leave before its audit entry is on
Kafka, or a crash right after the answer would lose the entry. Waiting for one broker round
trip per request would cost verification its speed, so entries are buffered and sent in
batches: each request waits for the batch its entry is in (a few milliseconds), and many
concurrent requests share one round trip. An entry that cannot be published within the bound
fails its request closed (`AuditUnavailableError`, answered 503), counted in
`permits_audit_unpublished_total`. The bound is kept by one timer per batch (started by its
first entry, so no entry waits longer), not by a timeout per request: a timeout per request
cost a verification more CPU than everything else the audit does for it.

An entry's CloudEvent is written straight to JSON (`entry_json`: the same bytes the
`AuditAccess` model and its envelope give, its lengths checked against the model's schema),
and a batch goes to the broker as closed record batches per partition (`publish_records`,
partitioned as `send` would): the model, the envelope and one `send` per entry were most of
what the audit cost a verification, and a closed batch does not wait out the producer's
linger. A batch is sent as soon as the one before it is acknowledged, with whatever
accumulated meanwhile (the producer keeps one request in flight per broker anyway).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram

from permits_common.events.envelope import envelope_json, json_time, random_event_id
from permits_common.events.models import AuditAccess
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_common.metrics import LATENCY_BUCKETS, declare_label_values
from permits_common.web.auth import Principal

log = get_logger("audit")

AUDIT_PUBLISHED = Counter(
    "permits_audit_published_total",
    "Audit entries acknowledged by Kafka, by service and action",
    ["service", "action"],
)
AUDIT_UNPUBLISHED = Counter(
    "permits_audit_unpublished_total",
    "Answers refused with 503 because their audit entry could not be published in time",
    ["service"],
)
declare_label_values(AUDIT_UNPUBLISHED)
AUDIT_BATCH_SECONDS = Histogram(
    "permits_audit_batch_seconds",
    "Time to publish one batch of audit entries, by service",
    ["service"],
    buckets=LATENCY_BUCKETS,
)


class AuditUnavailableError(Exception):
    """The entry could not be published within the bound: the answer must not be given."""


_Entry = tuple[bytes, bytes, str, "asyncio.Future[None]"]
"""An entry's JSON, its key, its action (for the metric) and the future its request awaits."""


class AuditTrail:
    """Buffers audit entries and publishes them in batches on the service's producer."""

    def __init__(
        self,
        publisher: EventPublisher,
        *,
        service: str,
        topic: str,
        timeout_seconds: float = 2.0,
        max_batch: int = 1000,
        extra_publishers: Sequence[EventPublisher] = (),
    ) -> None:
        """`extra_publishers` (started and stopped by the caller) each let one more batch be
        in flight: the producer keeps one produce request in flight per broker connection."""
        self._idle = collections.deque([publisher, *extra_publishers])
        self._sending: set[asyncio.Task[None]] = set()
        self._service = service
        self._topic = topic
        self._timeout = timeout_seconds
        self._max_batch = max_batch
        self._pending: list[_Entry] = []
        self._expiry: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the flusher on the current loop (after the publisher has started)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._run(), name=f"audit-{self._service}")

    async def stop(self) -> None:
        """Publish what is buffered (within the bound), then stop the flusher and whatever it
        still has in flight."""
        if self._flusher is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain(), self._timeout)
        for task in (self._flusher, *self._sending):
            task.cancel()
        for task in (self._flusher, *self._sending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._flusher = None

    async def record(
        self,
        principal: Principal | None,
        action: str,
        subject: str,
        outcome: str,
        *,
        point: str | None = None,
        agency: str | None = None,
        purpose: str | None = None,
    ) -> None:
        """Publish one entry and wait until Kafka has it; AuditUnavailableError after the bound.

        `principal` None is the system itself acting (e.g. a feed delivery to an agency)."""
        value = entry_json(
            self._service,
            _actor(principal),
            action,
            subject,
            outcome,
            point=point,
            agency=agency,
            purpose=purpose,
        )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            self._expiry = loop.call_later(self._timeout, _expire, self._pending)
        self._pending.append((value, subject.encode(), action, done))
        self._wake.set()
        try:
            await done
        except AuditUnavailableError:
            AUDIT_UNPUBLISHED.labels(self._service).inc()
            raise AuditUnavailableError("the audit entry could not be published") from None

    async def _run(self) -> None:
        """Whatever accumulated goes out as soon as a publisher is free (no fixed linger): a
        batch per publisher in flight, the next one the moment one is acknowledged; the
        publishers take turns."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and self._idle:
                entries, expiry = self._pending, self._expiry
                self._pending, self._expiry = [], None
                publisher = self._idle.popleft()
                sending = asyncio.create_task(self._send_all(publisher, entries, expiry))
                self._sending.add(sending)
                sending.add_done_callback(functools.partial(self._sent, publisher))

    def _sent(self, publisher: EventPublisher, sending: asyncio.Task[None]) -> None:
        self._sending.discard(sending)
        self._idle.append(publisher)
        self._wake.set()

    async def _send_all(
        self,
        publisher: EventPublisher,
        entries: list[_Entry],
        expiry: asyncio.TimerHandle | None,
    ) -> None:
        for start in range(0, len(entries), self._max_batch):
            await self._send(publisher, entries[start : start + self._max_batch])
        if expiry is not None:
            expiry.cancel()

    async def _drain(self) -> None:
        """Until nothing is buffered or in flight (the flusher sends what is buffered)."""
        while self._pending or self._sending:
            if self._sending:
                await asyncio.wait(set(self._sending))
            else:
                self._wake.set()
                await asyncio.sleep(0)

    async def _send(self, publisher: EventPublisher, batch: Sequence[_Entry]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        records = [(self._topic, key, value) for value, key, _, _ in batch]
        try:
            await publisher.publish_records(records)
        except Exception as exc:
            log.warning("audit batch not published", entries=len(batch), error=repr(exc)[:200])
            _fail(batch, AuditUnavailableError(str(exc)))
            return
        AUDIT_BATCH_SECONDS.labels(self._service).observe(loop.time() - started)
        for action, count in collections.Counter(action for _, _, action, _ in batch).items():
            AUDIT_PUBLISHED.labels(self._service, action).inc(count)
        for *_, done in batch:
            if not done.done():
                done.set_result(None)


def _fail(entries: Sequence[_Entry], error: AuditUnavailableError) -> None:
    """Fail the requests still waiting for these entries (marked retrieved: a request that
    went away leaves nobody to read its error)."""
    for *_, done in entries:
        if not done.done():
            done.set_exception(error)
            done.exception()


def _expire(entries: Sequence[_Entry]) -> None:
    """The bound has passed for a batch: whoever still waits gets a 503."""
    _fail(entries, AuditUnavailableError("not published within the bound"))


def _actor(principal: Principal | None) -> tuple[str, str]:
    if principal is None:
        return "system", "system"
    return principal.identity or "unknown", principal.role


def _length_limits() -> dict[str, tuple[int, int]]:
    """Each text field's (min, max) length as the `AuditAccess` model declares it (the actor's
    under `actor.`): the one definition of what an entry may hold."""
    schema = AuditAccess.model_json_schema()
    fields = {**schema["properties"]}
    actor = schema["$defs"]["AuditActor"]["properties"]
    fields |= {f"actor.{name}": spec for name, spec in actor.items()}
    limits: dict[str, tuple[int, int]] = {}
    for name, spec in fields.items():
        for option in (spec, *spec.get("anyOf", ())):
            if "maxLength" in option:
                limits[name] = (option.get("minLength", 0), option["maxLength"])
    return limits


_LIMITS = _length_limits()
_AUDIT_TYPE = AuditAccess.event_type()
_DESCRIBED_FIELDS = (
    "service",
    "action",
    "outcome",
    "point",
    "agency",
    "purpose",
    "actor.id",
    "actor.role",
)
_CHECKED: set[tuple[str | None, ...]] = set()
"""Descriptions (every field but the subject) already checked: a service's entries repeat a
few of them (a verification's differ only in subject and verdict), and checking all nine
fields each time was a fifth of the entry's cost."""
_CHECKED_MAX = 4096


def _check_length(name: str, text: str | None) -> None:
    if text is not None:
        shortest, longest = _LIMITS[name]
        if not shortest <= len(text) <= longest:
            raise ValueError(f"audit entry field {name}: {shortest}-{longest} characters")


def entry_json(
    service: str,
    actor: tuple[str, str],
    action: str,
    subject: str,
    outcome: str,
    *,
    point: str | None = None,
    agency: str | None = None,
    purpose: str | None = None,
    event_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """The entry's structured CloudEvent, byte for byte what `new_event(AuditAccess(...))`
    gives with `to_json(exclude_none=True)`, written without the model; ValueError (naming
    the field, not its value) for text the model would refuse."""
    _check_length("subject_id", subject)
    described = (service, action, outcome, point, agency, purpose, *actor)
    if described not in _CHECKED:
        for name, text in zip(_DESCRIBED_FIELDS, described, strict=True):
            _check_length(name, text)
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED.add(described)
    time = json_time(at or datetime.now(UTC))
    data: dict[str, Any] = {
        "at": time,
        "actor": {"id": actor[0], "role": actor[1]},
        "service": service,
        "action": action,
        "subject_id": subject,
        "outcome": outcome,
    }
    for name, text in (("point", point), ("agency", agency), ("purpose", purpose)):
        if text is not None:
            data[name] = text
    return envelope_json(
        event_id or random_event_id(),
        f"/permits/{service}",
        _AUDIT_TYPE,
        time,
        subject,
        data,
    )
