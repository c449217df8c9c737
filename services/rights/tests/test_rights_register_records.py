"""The register's changelog records: what the cards agent decides on after a restart, and how
records from the agent itself, the topic tail and another worker merge."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from permits_common.domain.card import HolderStatus
from permits_common.kafka import ensure_topics
from permits_common.partition_batches import publish_keyed
from permits_common.settings import CommonSettings
from permits_rights.adapters.register_changelog import (
    RegisterRecords,
    RegisterReplica,
    changelog_records,
    decode_entry,
    decode_history,
    encode_entry,
    encode_record,
    register_topic_spec,
)
from permits_rights.domain.holder import CardHistory
from permits_rights.domain.register import RegisterIndex

AT = datetime(2026, 11, 1, 9, tzinfo=UTC)
NUMBER = "810000199001010011"
DETAILS = {
    "name": "陈大文",
    "name_latin": "CHAN TAI MAN",
    "sex": "M",
    "birth_date": "1990-01-01",
    "region": "HK",
    "valid_from": "2026-11-01",
    "valid_until": "2031-11-01",
    "issuing_authority": "济南市公安局历下分局",
    "district": "历下区",
    "address": "历下区科院路6号",
}


def record_of(history: CardHistory) -> bytes:
    entry = history.entry()
    assert entry is not None
    return encode_record(entry, history)


def issued_then(*statuses: HolderStatus) -> CardHistory:
    history = CardHistory(NUMBER)
    history.record_issued(1, DETAILS, AT)
    for status in statuses:
        history.record_status(1, status, AT)
    return history


def test_a_record_holds_every_issue_with_its_details() -> None:
    history = issued_then(HolderStatus.REPORTED_LOST)
    history.record_issued(2, {**DETAILS, "address": "new address"}, AT)
    value = record_of(history)

    decoded = decode_history(NUMBER, value)
    assert decoded.issues[1].status is HolderStatus.SUPERSEDED
    assert decoded.issues[1].details == DETAILS
    assert decoded.issues[2].status is HolderStatus.ACTIVE
    assert decoded.issues[2].details["address"] == "new address"
    assert decoded.touched == set()
    assert decode_entry(value) == history.entry()


def test_a_record_without_history_stands_for_its_entry() -> None:
    entry = issued_then().entry()
    assert entry is not None
    decoded = decode_history(NUMBER, encode_entry(entry))
    assert decoded.issues[1].status is HolderStatus.ACTIVE
    assert decoded.issues[1].details == {}


def test_the_agent_decides_on_what_was_applied() -> None:
    records = RegisterRecords(RegisterIndex())
    assert records.history(NUMBER).issues == {}
    records.apply(NUMBER, record_of(issued_then()))

    history = records.history(NUMBER)
    changes = history.record_status(1, HolderStatus.REVOKED, AT)
    assert [c.status for c in changes] == [HolderStatus.REVOKED]
    assert history.issues[1].details == DETAILS
    assert history.record_issued(1, DETAILS, AT) == [], "a repeated card.issued changes nothing"


def test_a_late_copy_of_an_older_record_never_moves_a_card_back() -> None:
    index = RegisterIndex()
    records = RegisterRecords(index)
    older = record_of(issued_then())
    newer = record_of(issued_then(HolderStatus.REPORTED_LOST))
    records.apply(NUMBER, newer)
    records.apply(NUMBER, older)

    assert records.status_of(NUMBER, 1) == "reported_lost"
    entry = index.get(NUMBER)
    assert entry is not None
    assert entry.status is HolderStatus.REPORTED_LOST
    assert entry.valid_until == date(2031, 11, 1)
    assert records.issues_by_status()["reported_lost"] == 1
    assert records.issues_by_status()["active"] == 0


def test_two_workers_records_merge_issue_by_issue() -> None:
    records = RegisterRecords(RegisterIndex())
    mine = issued_then(HolderStatus.EXPIRED)
    theirs = CardHistory(NUMBER)
    theirs.record_status(1, HolderStatus.REPORTED_LOST, AT)
    records.apply(NUMBER, record_of(mine))
    records.apply(NUMBER, record_of(theirs))

    merged = records.history(NUMBER)
    assert merged.issues[1].status is HolderStatus.REPORTED_LOST
    assert merged.issues[1].details == DETAILS, "details known to one side are kept"
    assert records.issues_by_status() == {
        "active": 0,
        "expired": 0,
        "reported_lost": 1,
        "superseded": 0,
        "revoked": 0,
    }
    assert len(records) == 1


def test_counts_follow_every_issue_of_every_card() -> None:
    records = RegisterRecords(RegisterIndex())
    reissued = issued_then()
    reissued.record_issued(2, DETAILS, AT)
    records.apply(NUMBER, record_of(reissued))
    other = CardHistory("810000199001010022")
    other.record_issued(1, DETAILS, AT)
    records.apply(other.card_number, record_of(other))

    counts = records.issues_by_status()
    assert counts["active"] == 2
    assert counts["superseded"] == 1
    assert records.status_of(NUMBER, 3) is None


def test_the_timeline_is_the_issue_feed_log() -> None:
    history = issued_then()
    changes = history.record_status(1, HolderStatus.REPORTED_LOST, AT)
    published = datetime(2026, 11, 1, 10, tzinfo=UTC)
    history.published(changes, published)

    timeline = decode_history(NUMBER, record_of(history)).issues[1].timeline
    assert [(a.status, a.changed_at, a.published_at) for a in timeline] == [
        (HolderStatus.ACTIVE, AT, None),
        (HolderStatus.REPORTED_LOST, AT, published),
    ]


def test_merged_timelines_keep_each_status_once_published_first() -> None:
    published = datetime(2026, 11, 1, 10, tzinfo=UTC)
    announced = issued_then()
    announced.published(announced.record_status(1, HolderStatus.REVOKED, AT), published)
    unannounced = issued_then(HolderStatus.REVOKED)
    records = RegisterRecords(RegisterIndex())
    records.apply(NUMBER, record_of(unannounced))
    records.apply(NUMBER, record_of(announced))

    timeline = records.history(NUMBER).issues[1].timeline
    assert [(a.status, a.published_at) for a in timeline] == [
        (HolderStatus.ACTIVE, None),
        (HolderStatus.REVOKED, published),
    ]


def test_a_newer_record_of_the_same_card_replaces_the_held_one() -> None:
    records = RegisterRecords(RegisterIndex())
    history = issued_then()
    records.apply(NUMBER, record_of(history))
    history.record_status(1, HolderStatus.REPORTED_LOST, AT)
    history.record_issued(2, DETAILS, AT)
    newer = record_of(history)
    records.apply(NUMBER, newer)

    assert record_of(records.history(NUMBER)) == newer
    assert records.issues_by_status()["active"] == 1
    assert records.issues_by_status()["superseded"] == 1
    assert records.issues_by_status()["reported_lost"] == 0


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_the_replica_catches_up_with_records_another_worker_wrote(
    infrastructure: dict[str, str], unique: str
) -> None:
    """What a worker waits for after a partition assignment: every record on the changelog,
    including those another worker wrote after this worker's replay."""
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    topic = f"test-register-{unique}"
    await ensure_topics(settings, [register_topic_spec(topic)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    records = RegisterRecords(RegisterIndex())
    replica = RegisterReplica(settings, topic, records)
    following = asyncio.create_task(replica.run())
    try:
        await publish_keyed(producer, changelog_records(topic, {NUMBER: record_of(issued_then())}))
        await asyncio.wait_for(replica.ready.wait(), 30)
        await replica.catch_up()
        assert records.status_of(NUMBER, 1) == "active"

        other_worker = {NUMBER: record_of(issued_then(HolderStatus.REPORTED_LOST))}
        await publish_keyed(producer, changelog_records(topic, other_worker))
        await asyncio.wait_for(replica.catch_up(), 30)
        assert records.status_of(NUMBER, 1) == "reported_lost"
    finally:
        replica.stop()
        await asyncio.wait_for(following, 30)
        await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
