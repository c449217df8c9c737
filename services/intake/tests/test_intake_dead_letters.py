"""`GET /api/v1/dead-letters`: the operator's view of the dead-letter topic, read from the real
broker (a topic of the test's own, so other runs' dead letters do not count)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from intake_harness import CLERK, OPS, RunningIntake, intake_settings, running_intake

from permits_common.events.envelope import new_event
from permits_common.events.models import DeadLetter
from permits_common.events.topics import TopicSpec
from permits_common.kafka import EventPublisher, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PERSONAL = "陈大文 H12345678"


@pytest.fixture
async def dead_letter_intake(
    infrastructure: dict[str, str], unique: str
) -> AsyncIterator[tuple[RunningIntake, list[str]]]:
    """An intake reading its own dead-letter topic, which holds four dead letters and one
    message that is not a CloudEvent at all."""
    topic = f"permits.deadletter.test-{unique}"
    settings = intake_settings(infrastructure, deadletter_topic=topic)
    await ensure_topics(settings, [TopicSpec(topic, "original key", "test", partitions=2)])
    publisher = EventPublisher(settings, "issuance")
    await publisher.start()
    keys = [f"app-{unique}-{n}" for n in range(4)]
    start = datetime.now(UTC) - timedelta(minutes=10)
    try:
        for n, key in enumerate(keys):
            data = DeadLetter(
                original_topic="permits.applications.v1",
                original_partition=n % 2,
                original_offset=100 + n,
                original_key=key,
                original_value=f'{{"name": "{PERSONAL}"}}',
                consumer="permits-issuance",
                error=f"invalid data for {PERSONAL}",
            )
            event = new_event(data, source="issuance", time=start + timedelta(minutes=n))
            await publisher.producer.send_and_wait(topic, event.to_json(), key=event.key)
        await publisher.producer.send_and_wait(topic, b"not json", key=b"junk")
    finally:
        await publisher.stop()
    async with running_intake(settings) as running:
        yield running, keys


async def test_operators_see_how_many_and_the_newest_by_reference_only(
    dead_letter_intake: tuple[RunningIntake, list[str]],
) -> None:
    intake, keys = dead_letter_intake
    response = await intake.client.get("/api/v1/dead-letters", params={"recent": 3}, headers=OPS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["topic"] == intake.settings.deadletter_topic
    assert body["total"] == 5
    assert len(body["recent"]) == 3
    times = [row["at"] for row in body["recent"]]
    assert times == sorted(times, reverse=True)
    described = [row for row in body["recent"] if row["event_id"] is not None]
    assert [row["original_key"] for row in described][:2] == [keys[3], keys[2]]
    newest = next(row for row in described if row["original_key"] == keys[3])
    assert newest["consumer"] == "permits-issuance"
    assert newest["source"] == "issuance"
    assert newest["original_topic"] == "permits.applications.v1"
    assert newest["original_offset"] == 103
    assert PERSONAL not in response.text
    assert "error" not in newest
    assert "original_value" not in newest

    everything = await intake.client.get("/api/v1/dead-letters", params={"recent": 50}, headers=OPS)
    rows = everything.json()["recent"]
    assert len(rows) == 5
    junk = next(row for row in rows if row["event_id"] is None)
    assert junk["original_key"] == "junk"
    assert junk["consumer"] is None


async def test_only_operators_may_read_dead_letters(
    dead_letter_intake: tuple[RunningIntake, list[str]],
) -> None:
    intake, _keys = dead_letter_intake
    assert (await intake.client.get("/api/v1/dead-letters", headers=CLERK)).status_code == 403
    assert (await intake.client.get("/api/v1/dead-letters")).status_code == 401
    too_many = await intake.client.get("/api/v1/dead-letters", params={"recent": 51}, headers=OPS)
    assert too_many.status_code == 422


async def test_an_empty_or_missing_topic_has_none(infrastructure: dict[str, str]) -> None:
    settings = intake_settings(
        infrastructure, deadletter_topic=f"permits.deadletter.absent-{uuid.uuid4().hex[:10]}"
    )
    async with running_intake(settings) as intake:
        response = await intake.client.get("/api/v1/dead-letters", headers=OPS)
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
    assert response.json()["recent"] == []
