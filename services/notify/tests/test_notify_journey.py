"""The notify worker against the real broker, store, SMTP server and SMS gateway simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from notify_harness import (
    OPS,
    NotifyHarness,
    running_notify,
    unique_phone,
    wait_for,
    wait_until,
)
from notify_samples import accepted, card_issued
from pymongo import AsyncMongoClient

from permits_common.clock import SHANGHAI
from permits_common.events.models import (
    ApplicationReady,
    ApplicationRejected,
    CardSuperseded,
)
from permits_common.events.topics import NOTIFICATIONS
from permits_notify.simulators.sms_gateway import FailureRule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notify(
    infrastructure: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NotifyHarness]:
    async with running_notify(infrastructure, Path(tmp_path_factory.mktemp("notify"))) as h:
        yield h


def new_id() -> str:
    return f"A-{uuid.uuid4().hex[:12]}"


def ready(application_id: str) -> ApplicationReady:
    return ApplicationReady(
        application_id=application_id,
        acceptance_point="LIXIA",
        card_number="810000199001010012",
        issue_count=1,
        ready_on=date(2026, 11, 20),
    )


@pytest.mark.timeout(60)
async def test_accepted_then_ready_reaches_the_applicant_in_their_language(
    notify: NotifyHarness,
) -> None:
    english, simplified = new_id(), new_id()
    phone = unique_phone()
    email = f"{simplified.lower()}@example.com"
    await notify.publish(accepted(english, language="en", phone=phone, email="e@example.com"))
    await notify.publish(accepted(simplified, language="zh-Hans", phone=None, email=email))
    await notify.publish(ready(english))
    await notify.publish(ready(simplified))

    sms = await wait_until(lambda: _at_least(notify.sms_to(phone), 2))
    assert english in sms[0]["text"]
    assert "30 November 2026" in sms[0]["text"]
    assert "ready" in sms[1]["text"]
    assert "历下区科院路6号" in sms[1]["text"]
    assert "0531-82922110" in sms[1]["text"]

    mail = await wait_until(lambda: _at_least(notify.mail_to(email), 2))
    subjects = [m["subject"] for m in mail]
    assert any("居住证申请已受理" in subject for subject in subjects)
    assert any("居住证可以领取了" in subject for subject in subjects)
    assert any("2026年11月30日" in m["body"] for m in mail)

    log = await notify.log(english)
    assert [(d["message_type"], d["channel"], d["status"]) for d in log] == [
        ("application_accepted", "sms", "delivered"),
        ("application_ready", "sms", "delivered"),
    ]
    assert all(d["recipient"] == f"+852****{phone[-4:]}" for d in log)
    assert log[0]["template"] == "en/application_accepted.sms.j2"


@pytest.mark.timeout(60)
async def test_sms_permanent_failure_falls_back_to_email(notify: NotifyHarness) -> None:
    application_id, phone = new_id(), unique_phone()
    email = f"{application_id.lower()}@example.com"
    notify.gateway.rules.append(_rule("permanent", number=phone))
    await notify.publish(accepted(application_id, phone=phone, email=email))

    mail = await wait_until(lambda: notify.mail_to(email))
    assert application_id in mail[0]["subject"]
    assert notify.sms_to(phone) == []
    log = await wait_for(lambda: _log_with(notify, application_id, 2))
    assert [(d["channel"], d["status"]) for d in log] == [("sms", "failed"), ("email", "sent")]
    assert "invalid_number" in log[0]["error"]


@pytest.mark.timeout(60)
async def test_temporary_failures_are_retried_on_the_same_channel(notify: NotifyHarness) -> None:
    application_id, phone = new_id(), unique_phone()
    notify.gateway.rules.append(_rule("temporary", number=phone, count=2))
    await notify.publish(accepted(application_id, phone=phone, email="t@example.com"))

    sms = await wait_until(lambda: notify.sms_to(phone))
    assert application_id in sms[0]["text"]
    log = await wait_for(lambda: _log_with(notify, application_id, 1, status="delivered"))
    assert log[0]["attempts"] == 3
    assert notify.mail_to("t@example.com") == []


@pytest.mark.timeout(60)
async def test_a_redelivered_event_sends_nothing_twice(notify: NotifyHarness) -> None:
    application_id, phone = new_id(), unique_phone()
    event_id = str(uuid.uuid4())
    first = accepted(application_id, phone=phone, email=None)
    await notify.publish(first, event_id=event_id)
    await notify.publish(first, event_id=event_id)
    await notify.publish(ready(application_id))
    await wait_until(lambda: _at_least(notify.sms_to(phone), 2))
    await notify.publish(first, event_id=event_id)
    marker = await notify.publish(ready(application_id))
    await wait_until(lambda: [m for m in notify.sms_to(phone) if marker in (m["reference"] or "")])

    texts = [m["text"] for m in notify.sms_to(phone)]
    receipts = [t for t in texts if "已受理" in t]
    assert len(receipts) == 1
    assert len(texts) == 3
    assert len(await notify.log(application_id)) == 3
    store: AsyncMongoClient[Any] = AsyncMongoClient(notify.infrastructure["PERMITS_MONGO_URL"])
    try:
        claims = await store[notify.database]["processed_events"].count_documents({})
    finally:
        await store.close()
    assert claims == 0, "what notify writes is keyed by the event: there is nothing to claim"


@pytest.mark.timeout(60)
async def test_a_rejection_names_the_reason(notify: NotifyHarness) -> None:
    known, unknown = new_id(), new_id()
    phone_known, phone_unknown = unique_phone(), unique_phone()
    await notify.publish(accepted(known, phone=phone_known, email=None))
    await notify.publish(accepted(unknown, language="en", phone=phone_unknown, email=None))
    for application_id, code in ((known, "residence_too_short"), (unknown, "x_future_rule")):
        await notify.publish(
            ApplicationRejected(
                application_id=application_id,
                acceptance_point="LIXIA",
                code=code,
                message="internal detail",
            )
        )
    known_sms = await wait_until(lambda: _at_least(notify.sms_to(phone_known), 2))
    assert "您在濟南居住未滿半年" in known_sms[1]["text"]
    unknown_sms = await wait_until(lambda: _at_least(notify.sms_to(phone_unknown), 2))
    assert "x_future_rule" in unknown_sms[1]["text"]
    assert "not approved" in unknown_sms[1]["text"]


@pytest.mark.timeout(60)
async def test_outcomes_are_published_with_masked_recipients(notify: NotifyHarness) -> None:
    sent_id, failed_id = new_id(), new_id()
    phone, bad_phone = unique_phone(), unique_phone()
    notify.gateway.rules.append(_rule("permanent", number=bad_phone))
    await notify.publish(accepted(sent_id, phone=phone, email=None))
    await notify.publish(accepted(failed_id, phone=bad_phone, email=None))

    consumer = AIOKafkaConsumer(
        NOTIFICATIONS,
        bootstrap_servers=notify.infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        group_id=f"notify-test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[str, dict[str, object]] = {}
    raw_values: list[bytes] = []
    try:

        async def read() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = orjson.loads(record.value or b"{}")
                    if event.get("subject") in (sent_id, failed_id):
                        found[event["type"]] = event
                        raw_values.append(record.value or b"")
            return len(found) == 2

        await wait_for(read, within=30, every=0)
    finally:
        await consumer.stop()
    sent = found["permits.notification.sent"]["data"]
    failed = found["permits.notification.failed"]["data"]
    assert isinstance(sent, dict)
    assert isinstance(failed, dict)
    assert sent["recipient"] == f"+852****{phone[-4:]}"
    assert failed["recipient"] == f"+852****{bad_phone[-4:]}"
    assert sent["message_type"] == "application_accepted"
    assert failed["error"]
    assert not any(phone.encode() in raw or bad_phone.encode() in raw for raw in raw_values)


@pytest.mark.timeout(30)
async def test_the_delivery_log_is_for_operators_only(notify: NotifyHarness) -> None:
    path = "/api/v1/notifications?application_id=A-1"
    assert (await notify.http.get(path)).status_code == 401
    clerk = {"Authorization": "Bearer dev-clerk"}
    assert (await notify.http.get(path, headers=clerk)).status_code == 403
    assert (await notify.http.get(path, headers=OPS)).status_code == 200
    metrics = (await notify.http.get("/metrics")).text
    assert "permits_notifications_total" in metrics
    assert "permits_notification_send_seconds" in metrics


@pytest.mark.timeout(90)
async def test_expiry_reminders_follow_the_dev_clock_and_stop_for_a_replaced_card(
    notify: NotifyHarness,
) -> None:
    """Runs last in the module: it moves the worker's clock."""
    kept, replaced = new_id(), new_id()
    phone_kept, phone_replaced = unique_phone(), unique_phone()
    card_kept = f"81000019900101{uuid.uuid4().int % 10000:04d}"
    card_replaced = f"82000019900101{uuid.uuid4().int % 10000:04d}"
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    valid_until = today + timedelta(days=100)
    await notify.publish(accepted(kept, phone=phone_kept, email=None))
    await notify.publish(accepted(replaced, phone=phone_replaced, email=None))
    await notify.publish(card_issued(kept, card_kept, valid_until=valid_until))
    await notify.publish(card_issued(replaced, card_replaced, valid_until=valid_until))
    await notify.publish(
        CardSuperseded(
            card_number=card_replaced,
            issue_count=1,
            superseded_by_issue_count=2,
            application_id=replaced,
        )
    )
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        notify.infrastructure["PERMITS_MONGO_URL"], tz_aware=True
    )
    reminders = client[notify.database]["reminders"]
    try:

        async def scheduled() -> bool:
            statuses = {
                (doc["card_number"], doc["status"])
                async for doc in reminders.find(
                    {"card_number": {"$in": [card_kept, card_replaced]}}
                )
            }
            return statuses == {(card_kept, "scheduled"), (card_replaced, "cancelled")}

        await wait_for(scheduled)
    finally:
        await client.close()
    await wait_until(lambda: _at_least(notify.sms_to(phone_kept), 1))

    moved = await notify.http.put("/api/v1/dev/clock", json={"offset_days": 11}, headers=OPS)
    assert moved.status_code == 200
    first = await wait_until(lambda: _at_least(notify.sms_to(phone_kept), 2))
    assert "到期" in first[1]["text"]
    assert "89" in first[1]["text"]

    await notify.http.put("/api/v1/dev/clock", json={"offset_days": 71}, headers=OPS)
    second = await wait_until(lambda: _at_least(notify.sms_to(phone_kept), 3))
    assert "29" in second[2]["text"]
    assert [m for m in notify.sms_to(phone_replaced) if "到期" in m["text"]] == []
    await notify.http.put("/api/v1/dev/clock", json={"offset_days": 0}, headers=OPS)


def _at_least(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return items if len(items) >= count else []


async def _log_with(
    notify: NotifyHarness, application_id: str, count: int, status: str | None = None
) -> list[dict[str, Any]]:
    log = await notify.log(application_id)
    if len(log) < count or any(d["status"] == "pending" for d in log):
        return []
    if status is not None and log[-1]["status"] != status:
        return []
    return log


def _rule(
    kind: Literal["temporary", "permanent"], *, number: str, count: int | None = None
) -> FailureRule:
    return FailureRule(kind=kind, number=number, count=count)
