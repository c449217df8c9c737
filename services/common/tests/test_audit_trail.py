"""The audit trail's producer side: entries of concurrent requests share batches, a request that
goes away does not disturb the others, and an entry not on Kafka within the bound fails its
request (one timer per batch keeps the bound for every entry in it)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from permits_common.audit import AuditTrail, AuditUnavailableError, entry_json
from permits_common.events.envelope import decode, new_event
from permits_common.events.models import AuditAccess, AuditActor
from permits_common.events.topics import TopicSpec
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.partition_batches import KeyedRecord
from permits_common.settings import CommonSettings
from permits_common.web.auth import Principal

HOTEL = Principal("agency", "hotel", identity="tok-hotel")


def _unpublished(service: str) -> float:
    value = REGISTRY.get_sample_value("permits_audit_unpublished_total", {"service": service})
    return value or 0.0


@pytest.mark.parametrize(
    "where",
    [{}, {"agency": "hotel", "purpose": "guest check-in"}, {"point": "KT", "purpose": "x" * 200}],
)
@pytest.mark.parametrize("at", [datetime(2026, 3, 1, tzinfo=UTC), datetime.now(UTC)])
def test_an_entry_is_written_as_the_model_and_its_envelope_write_it(
    where: dict[str, str], at: datetime
) -> None:
    modelled = new_event(
        AuditAccess(
            at=at,
            actor=AuditActor(id="tok-hotel", role="agency"),
            service="rights",
            action="verify",
            subject_id="R1234567",
            outcome="valid",
            **where,
        ),
        source="/permits/rights",
        event_id="entry-1",
        time=at,
    )
    written = entry_json(
        "rights",
        ("tok-hotel", "agency"),
        "verify",
        "R1234567",
        "valid",
        event_id="entry-1",
        at=at,
        **where,
    )
    assert written == modelled.to_json(exclude_none=True)
    assert decode(written) == modelled


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("subject_id", {"subject": ""}),
        ("subject_id", {"subject": "R" * 65}),
        ("purpose", {"purpose": "x" * 201}),
        ("actor.id", {"actor": ("t" * 65, "agency")}),
    ],
)
def test_an_entry_the_model_would_refuse_is_refused_without_its_value(
    field: str, change: dict[str, object]
) -> None:
    """Also after an accepted entry that differs only in that field (descriptions already
    checked are remembered)."""
    arguments: dict[str, object] = {
        "service": "rights",
        "actor": ("tok-hotel", "agency"),
        "action": "verify",
        "subject": "R1234567",
        "outcome": "valid",
    }
    entry_json(**arguments)  # type: ignore[arg-type]
    arguments |= change
    with pytest.raises(ValueError, match=f"field {field}:") as refused:
        entry_json(**arguments)  # type: ignore[arg-type]
    assert "RRRR" not in str(refused.value)
    assert "xxxx" not in str(refused.value)


async def test_entries_not_sent_within_the_bound_fail_their_requests() -> None:
    service = f"bound-{uuid.uuid4().hex[:6]}"
    publisher = EventPublisher(CommonSettings(), "/test")
    trail = AuditTrail(publisher, service=service, topic="never-sent", timeout_seconds=0.3)

    async def record(subject: str) -> float:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError):
            await trail.record(HOTEL, "verify", subject, "active", agency="hotel")
        return time.monotonic() - started

    first = [asyncio.create_task(record(f"card-{i}")) for i in range(5)]
    await asyncio.sleep(0.1)
    later = [asyncio.create_task(record(f"card-late-{i}")) for i in range(3)]
    waited = await asyncio.gather(*first, *later)
    assert all(0.15 <= seconds <= 0.6 for seconds in waited[:5]), waited
    assert all(seconds <= 0.5 for seconds in waited[5:]), waited
    assert _unpublished(service) == 8


class CountingPublisher(EventPublisher):
    """A publisher that counts the batches of records it was given."""

    batches = 0

    async def publish_records(self, records: Sequence[KeyedRecord]) -> None:
        self.batches += 1
        await super().publish_records(records)


@pytest.mark.integration
@pytest.mark.parametrize("in_flight", [1, 2])
async def test_concurrent_entries_are_published_and_a_cancelled_request_harms_none(
    infrastructure: dict[str, str], unique: str, in_flight: int
) -> None:
    """With two publishers, batches take turns on them."""
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    topic = f"permits.audit.test-{unique}"
    await ensure_topics(settings, [TopicSpec(topic, "subject", "test")])
    publishers = [CountingPublisher(settings, "/test") for _ in range(in_flight)]
    publisher, *extra = publishers
    for each in publishers:
        await each.start()
    trail = AuditTrail(
        publisher,
        service=f"test-{unique}",
        topic=topic,
        timeout_seconds=10,
        extra_publishers=extra,
    )
    trail.start()
    try:
        requests = [
            asyncio.create_task(trail.record(HOTEL, "verify", f"card-{i % 7}", "active"))
            for i in range(300)
        ]
        requests[150].cancel()
        results = await asyncio.gather(*requests, return_exceptions=True)
        assert isinstance(results[150], asyncio.CancelledError)
        assert all(result is None for i, result in enumerate(results) if i != 150)
        await trail.record(HOTEL, "verify", "card-after", "active")
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            subjects: list[bytes] = []
            async with asyncio.timeout(30):
                while len(subjects) < 300:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        subjects += [record.key for record in records if record.key]
        finally:
            await consumer.stop()
        assert len(subjects) == 300
        assert subjects.count(b"card-after") == 1
        assert all(each.batches > 0 for each in publishers)
    finally:
        await trail.stop()
        for each in publishers:
            await each.stop()
    assert _unpublished(f"test-{unique}") == 0


@pytest.mark.integration
async def test_record_batches_go_out_without_waiting_out_the_linger(
    infrastructure: dict[str, str], unique: str
) -> None:
    """Ready-made records are handed over in closed batches: nothing more joins them, so the
    producer sends them at once instead of after its linger (a long one here)."""
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    topic = f"permits.audit.test-{unique}"
    await ensure_topics(settings, [TopicSpec(topic, "subject", "test")])
    linger_seconds = 5.0
    publisher = EventPublisher(settings, "/test", linger_ms=int(linger_seconds * 1000))
    await publisher.start()
    try:
        await publisher.publish_records([(topic, b"warm-up", b"{}")])
        started = time.monotonic()
        await publisher.publish_records([(topic, f"card-{i}".encode(), b"{}") for i in range(50)])
        assert time.monotonic() - started < linger_seconds / 2
    finally:
        await publisher.stop()
