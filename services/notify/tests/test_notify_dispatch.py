"""The dispatcher in-process against the real store, broker and channel simulators, with a
clock the test controls: crash resume, quiet hours and the per-recipient rate limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import pytest_asyncio
from notify_harness import SMS_KEY, serve_in_loop, unique_phone
from notify_samples import accepted
from pymongo import AsyncMongoClient

from permits_common.clock import SHANGHAI, FixedClock
from permits_common.events.envelope import new_event
from permits_common.events.models import SlaAtRisk
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.mongo import Document
from permits_notify.adapters.channels import SmsGatewaySender, SmtpSender
from permits_notify.adapters.store import NotifyStore
from permits_notify.adapters.templates import TemplateRenderer
from permits_notify.config import NotifySettings
from permits_notify.domain.scheduling import QuietHours, RateLimit
from permits_notify.service.notifier import DeliveryPolicy, NotificationService
from permits_notify.simulators.sms_gateway import GatewayState, create_sms_gateway_app
from permits_notify.simulators.smtp_sink import start_smtp_sink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Dispatch:
    service: NotificationService
    store: NotifyStore
    clock: FixedClock
    gateway: GatewayState
    restart: Callable[[], NotificationService]
    """The same service as a new process would build it (fresh memory, the same store)."""


@pytest_asyncio.fixture(loop_scope="session")
async def dispatch(infrastructure: dict[str, str]) -> AsyncIterator[Dispatch]:
    smtp = await start_smtp_sink("127.0.0.1", 0)
    app = create_sms_gateway_app(SMS_KEY)
    server, task, port = await serve_in_loop(app)
    settings = NotifySettings(
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        smtp_port=smtp.port,
        sms_url=f"http://127.0.0.1:{port}/api/v1/messages",
        sms_api_key=SMS_KEY,
    )
    await ensure_topics(settings)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        infrastructure["PERMITS_MONGO_URL"], tz_aware=True
    )
    store = NotifyStore(client[f"permits_test_{uuid.uuid4().hex[:10]}"])
    await store.ensure_indexes()
    publisher = EventPublisher(settings, "notify-tests")
    await publisher.start()
    sms = SmsGatewaySender(settings)
    clock = FixedClock(datetime(2026, 11, 20, 23, 30, tzinfo=SHANGHAI))

    def build(store: NotifyStore) -> NotificationService:
        return NotificationService(
            store=store,
            renderer=TemplateRenderer(),
            senders={"sms": sms, "email": SmtpSender(settings)},
            publisher=publisher,
            clock=clock,
            policy=DeliveryPolicy(
                quiet_hours=QuietHours(),
                rate_limit=RateLimit(limit=2, window=timedelta(hours=1)),
            ),
        )

    def restart() -> NotificationService:
        return build(NotifyStore(store.database))

    try:
        yield Dispatch(build(store), store, clock, app.state.gateway, restart)
    finally:
        await sms.close()
        await publisher.stop()
        await client.drop_database(store.database.name)
        await client.close()
        server.should_exit = True
        await task
        await smtp.close()


def at_risk(application_id: str) -> SlaAtRisk:
    return SlaAtRisk(
        application_id=application_id,
        acceptance_point="LIXIA",
        due_date=date(2026, 11, 30),
        working_days_left=5,
    )


def sms_to(dispatch: Dispatch, phone: str) -> list[dict[str, object]]:
    return [m for m in dispatch.gateway.messages if m["to"] == phone]


async def test_at_risk_sms_waits_for_the_morning_but_a_receipt_does_not(
    dispatch: Dispatch,
) -> None:
    application_id, phone = f"A-{uuid.uuid4().hex[:12]}", unique_phone()
    await dispatch.service.handle(new_event(accepted(application_id, phone=phone), source="t"))
    await dispatch.service.handle(new_event(at_risk(application_id), source="t"))
    await dispatch.service.dispatch_due()

    texts = [m["text"] for m in sms_to(dispatch, phone)]
    assert len(texts) == 1
    assert "已受理" in str(texts[0])
    log = await dispatch.store.deliveries_for(application_id)
    deferred = log[1]
    assert deferred["status"] == "pending"
    assert deferred["deferred_reason"] == "quiet_hours"
    assert deferred["next_attempt_at"].astimezone(SHANGHAI) == datetime(
        2026, 11, 21, 8, 0, tzinfo=SHANGHAI
    )

    dispatch.clock.advance(timedelta(hours=9))
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 2


async def test_excess_sms_are_deferred_by_the_rate_limit_not_dropped(dispatch: Dispatch) -> None:
    dispatch.clock.advance(timedelta(hours=12))
    phone = unique_phone()
    ids = [f"A-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    for application_id in ids:
        await dispatch.service.handle(new_event(accepted(application_id, phone=phone), source="t"))
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 2
    waiting = [
        doc
        for application_id in ids
        for doc in await dispatch.store.deliveries_for(application_id)
        if doc["status"] == "pending"
    ]
    assert [doc["deferred_reason"] for doc in waiting] == ["rate_limit"]

    dispatch.clock.advance(timedelta(hours=1, seconds=1))
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 3


async def test_the_rate_limit_counts_the_sends_of_a_process_that_restarted(
    dispatch: Dispatch,
) -> None:
    """The sends of the hour are appended to the store's send log, so a new process (a
    restart, or another worker) counts them: its first SMS to the recipient waits."""
    dispatch.clock.advance(timedelta(hours=14))
    phone = unique_phone()
    ids = [f"A-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    for application_id in ids[:2]:
        await dispatch.service.handle(new_event(accepted(application_id, phone=phone), source="t"))
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 2

    restarted = dispatch.restart()
    await restarted.handle(new_event(accepted(ids[2], phone=phone), source="t"))
    await restarted.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 2
    [waiting] = await dispatch.store.deliveries_for(ids[2])
    assert waiting["status"] == "pending"
    assert waiting["deferred_reason"] == "rate_limit"

    dispatch.clock.advance(timedelta(hours=1, seconds=1))
    await restarted.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 3


async def test_a_crash_after_sending_resends_without_a_second_sms(dispatch: Dispatch) -> None:
    """The crash window: the gateway took the SMS but the worker died before recording it.
    The work item is still there and its claim is held; once the lease has run out another
    pass takes the claim over, the resend carries the same idempotency key, and the gateway
    answers from memory instead of sending again."""
    dispatch.clock.advance(timedelta(days=1))
    application_id, phone = f"A-{uuid.uuid4().hex[:12]}", unique_phone()
    event = new_event(accepted(application_id, phone=phone), source="t")
    await dispatch.service.handle(event)
    database = dispatch.store.database
    key = f"{event.id}|sms"
    work = await database["pending_deliveries"].find_one({"_id": key})
    assert work is not None
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 1
    # Undo what the worker recorded after the send: as if it had died right after it.
    await database["delivery_outcomes"].delete_one({"_id": key})
    await database["pending_deliveries"].insert_one(work)

    await dispatch.service.handle(event)
    await dispatch.service.dispatch_due()
    record = await dispatch.store.delivery(key)
    assert record is not None
    assert record["status"] == "pending", "the claim is held until its lease runs out"

    dispatch.clock.advance(timedelta(seconds=61))
    await dispatch.service.dispatch_due()
    assert len(sms_to(dispatch, phone)) == 1
    record = await dispatch.store.delivery(key)
    assert record is not None
    assert record["status"] == "delivered"
    assert record["attempts"] == 1, "the same attempt, taken over"
    assert await database["pending_deliveries"].find_one({"_id": key}) is None
