"""The rights service as a real process on the real broker and store, with real webhook
receivers: feeds, verification, webhook retries and dead letters, restart, rate limit."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from permits_common.domain.agencies import Agency
from permits_common.events import topics
from permits_common.events.models import (
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
)
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.settings import CommonSettings
from permits_rights.adapters.policy_file import load_policies
from permits_rights.domain.policy import ENVELOPE_FIELDS
from permits_rights.domain.signature import signature_valid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

POLICIES = load_policies()
FEED_AGENCIES = [a for a in Agency if POLICIES[a].feed]
SECRETS = {"hotel": "hotel-secret", "transport": "transport-secret", "finance": "fin-secret"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def card_number() -> str:
    return "8100001990" + "".join(random.choices("0123456789", k=8))


@dataclass
class Receiver:
    """A real agency endpoint: fails its first `fail_first` calls, or never answers."""

    agency: str
    fail_first: int = 0
    hang: bool = False
    calls: int = 0
    delivered: Counter[str] = field(default_factory=Counter)
    arrival: dict[str, float] = field(default_factory=dict)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls += 1
        if self.hang:
            await asyncio.sleep(2)
        if self.calls <= self.fail_first:
            return web.Response(status=503)
        header = request.headers.get("X-Permits-Signature", "")
        if not signature_valid(body, SECRETS[self.agency], header):
            self.bad_signatures += 1
            return web.Response(status=401)
        event = orjson.loads(body)
        self.delivered[event["id"]] += 1
        self.arrival.setdefault(event["id"], time.monotonic())
        self.bodies[event["id"]] = event
        return web.Response(status=204)

    def for_card(self, number: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies.values() if b["subject"] == number]


@dataclass
class Service:
    port: int
    env: dict[str, str]
    receivers: dict[str, Receiver]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "permits_rights"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert self.process.poll() is None, "rights service exited"
                await asyncio.sleep(0.1)
        raise AssertionError("rights service not ready")

    async def stop(self) -> float:
        """SIGTERM and wait; returns how long the graceful stop took."""
        started = time.monotonic()
        if self.process is None:
            return 0.0
        self.process.send_signal(signal.SIGTERM)
        for _ in range(200):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        else:
            self.process.kill()
        self.process = None
        return time.monotonic() - started


async def skip_history(settings: CommonSettings, group: str) -> None:
    """Commit the group's offsets at the end of cards.v1, so the worker under test handles only
    this test's events and not everything other tests have published before."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topics.CARDS, p)
            for p in consumer.partitions_for_topic(topics.CARDS) or await _partitions(consumer)
        ]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    consumer.subscribe([topics.CARDS])
    for _ in range(50):
        found = consumer.partitions_for_topic(topics.CARDS)
        if found:
            consumer.unsubscribe()
            return set(found)
        await asyncio.sleep(0.1)
    raise AssertionError("cards topic has no partitions")


@pytest.fixture(scope="module")
async def service(
    infrastructure: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    uid = uuid.uuid4().hex[:10]
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    await ensure_topics(settings)
    group = f"permits-rights-test-{uid}"
    await skip_history(settings, group)
    receivers = {
        "hotel": Receiver("hotel", fail_first=2),
        "transport": Receiver("transport"),
        "finance": Receiver("finance", hang=True),
    }
    app = web.Application()
    for name, receiver in receivers.items():
        app.router.add_post(f"/{name}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", hook_port)
    await site.start()
    env = {
        **os.environ,
        **infrastructure,
        "PERMITS_RIGHTS_GROUP": group,
        "PERMITS_MONGO_DATABASE": f"permits_test_{uid}",
        "PERMITS_RIGHTS_PORT": str(free_port()),
        "PERMITS_WEBHOOK_TIMEOUT_SECONDS": "0.3",
        "PERMITS_WEBHOOK_MAX_ATTEMPTS": "3",
        "PERMITS_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "PERMITS_VERIFY_RATE_PER_SECOND": "20",
        "PERMITS_VERIFY_BURST": "20",
        "PERMITS_LOG_LEVEL": "WARNING",
    }
    for name, secret in SECRETS.items():
        env[f"PERMITS_WEBHOOK_{name.upper()}_URL"] = f"http://127.0.0.1:{hook_port}/{name}"
        env[f"PERMITS_WEBHOOK_{name.upper()}_SECRET"] = secret
    log_path = tmp_path_factory.mktemp("rights") / "service.log"
    svc = Service(int(env["PERMITS_RIGHTS_PORT"]), env, receivers, log_path)
    await svc.start()
    yield svc
    await svc.stop()
    await runner.cleanup()


@pytest.fixture(scope="module")
async def publisher(infrastructure: dict[str, str]) -> AsyncIterator[EventPublisher]:
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    pub = EventPublisher(settings, "issuance-test")
    await pub.start()
    yield pub
    await pub.stop()


def issued(number: str, issue: int, valid_until: date | None = None) -> CardIssued:
    start = date(2026, 11, 1)
    return CardIssued(
        card_number=number,
        issue_count=issue,
        application_id=f"app-{uuid.uuid4().hex[:8]}",
        kind="first" if issue == 1 else "reissue",
        name="陈大文",
        name_latin="CHAN TAI MAN",
        sex="M",
        birth_date=date(1990, 1, 1),
        region="HK",
        address="历下区科院路6号",
        district="历下区",
        travel_permit_number="H12345678",
        photo_ref="ph-1",
        fingerprints_ref="fp-1",
        valid_from=start,
        valid_until=valid_until or date(2031, 11, 1),
        issuing_authority="济南市公安局历下分局",
        acceptance_point="LIXIA",
    )


async def topic_ends(bootstrap: str, names: list[str]) -> dict[TopicPartition, int]:
    """Where each partition of the topics ends now. A reader started there wades through none
    of what earlier tests and runs left on the broker's topics (20 s was not always enough to
    read them from the beginning on a busy machine)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(name, number)
            for name in names
            for number in sorted(consumer.partitions_for_topic(name) or ())
        ]
        assert {tp.topic for tp in partitions} == set(names), "a topic has no partitions"
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    key: str,
    want: int,
    wait: float = 20.0,
    *,
    start: dict[TopicPartition, int],
) -> list[dict[str, Any]]:
    """Every event with the key on a topic from the offsets `start` (`topic_ends` before the
    events were published), once `want` have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    partitions = [tp for tp in start if tp.topic == topic]
    consumer.assign(partitions)
    for partition in partitions:
        consumer.seek(partition, start[partition])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline and len(found) < want:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                found += [orjson.loads(r.value) for r in records if r.key == key.encode()]
        if len(found) >= want:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found += [orjson.loads(r.value) for r in records if r.key == key.encode()]
    finally:
        await consumer.stop()
    return found


def distinct_by_id(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A feed is at least once (contract: consumers deduplicate on `id`): a batch handled again
    after a rebalance, e.g. while a restarted service joins its group, is published again with
    the same ids. The first of each id, in topic order."""
    first: dict[str, dict[str, Any]] = {}
    for event in events:
        first.setdefault(event["id"], event)
    return list(first.values())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def verify(
    service: Service, agency: str, number: str, name: str, issue: int | None = None
) -> httpx.Response:
    params: dict[str, Any] = {"number": number, "name": name}
    if issue is not None:
        params["issue_count"] = issue
    async with httpx.AsyncClient(base_url=service.url) as client:
        return await client.get(
            "/api/v1/verify",
            params=params,
            headers={"Authorization": f"Bearer dev-agency-{agency}"},
        )


async def ops_get(service: Service, path: str, **params: Any) -> Any:
    """An operator's request; reconciliation counts read the whole register on FerretDB, which
    can take longer than httpx's default 5 s on a busy machine."""
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        response = await client.get(
            path, params=params, headers={"Authorization": "Bearer dev-ops"}
        )
        assert response.status_code == 200, response.text
        return response.json()


PUBLISHED_AT: dict[str, float] = {}
TOPIC_ENDS: dict[str, dict[TopicPartition, int]] = {}
"""Per card: where the agency topics and the dead-letter topic ended before its events."""
LIFECYCLE = [(1, "active"), (1, "reported_lost"), (1, "superseded"), (2, "active")]


@pytest.fixture(scope="module")
async def lifecycle_card(
    service: Service, publisher: EventPublisher, infrastructure: dict[str, str]
) -> str:
    number = card_number()
    now = datetime.now(UTC)
    TOPIC_ENDS[number] = await topic_ends(
        infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        [*(topics.rights_topic(agency) for agency in Agency), topics.DEADLETTER],
    )
    await publisher.publish(publisher.event(issued(number, 1)))
    await publisher.publish(
        publisher.event(CardReportedLost(card_number=number, issue_count=1, reported_at=now))
    )
    await publisher.publish(
        publisher.event(
            CardSuperseded(
                card_number=number,
                issue_count=1,
                superseded_by_issue_count=2,
                application_id="app-2",
            )
        )
    )
    await publisher.publish(publisher.event(issued(number, 2)))
    PUBLISHED_AT[number] = time.monotonic()
    return number


async def test_every_agency_topic_shows_the_sequence_with_only_its_fields(
    service: Service, lifecycle_card: str, infrastructure: dict[str, str]
) -> None:
    bootstrap = infrastructure["PERMITS_KAFKA_BOOTSTRAP"]
    start = TOPIC_ENDS[lifecycle_card]
    results = await asyncio.gather(
        *(
            read_topic(bootstrap, topics.rights_topic(a), lifecycle_card, 4, start=start)
            if POLICIES[a].feed
            else read_topic(bootstrap, topics.rights_topic(a), lifecycle_card, 1, 3, start=start)
            for a in Agency
        )
    )
    for agency, events in zip(Agency, results, strict=True):
        policy = POLICIES[agency]
        if not policy.feed:
            assert events == [], "hmt_office gets no per-card feed"
            continue
        distinct = distinct_by_id(events)
        assert [(e["data"]["issue_count"], e["data"]["status"]) for e in distinct] == LIFECYCLE
        for event in events:
            assert set(event["data"]) <= policy.fields | ENVELOPE_FIELDS, agency
            assert event["type"] == "permits.holder.status"
            assert None not in event["data"].values()


async def test_verification_answers(
    service: Service, publisher: EventPublisher, lifecycle_card: str
) -> None:
    async def active() -> bool:
        answer = (await verify(service, "hotel", lifecycle_card, "陈大文", 2)).json()
        return bool(answer.get("status") == "active")

    await eventually(active)
    assert (await verify(service, "hotel", lifecycle_card, " chan  tai man ", 2)).json() == {
        "valid": True,
        "status": "active",
        "valid_until": "2031-11-01",
    }
    assert (await verify(service, "finance", lifecycle_card, "陈大文", 1)).json() == {
        "valid": False,
        "status": "superseded",
    }
    assert (await verify(service, "hotel", lifecycle_card, "李四", 2)).json() == {
        "valid": False,
        "status": "name_mismatch",
    }
    assert (await verify(service, "hotel", card_number(), "陈大文")).json() == {
        "valid": False,
        "status": "not_found",
    }
    assert (await verify(service, "hmt_office", lifecycle_card, "陈大文")).status_code == 403
    assert (await verify(service, "hotel", lifecycle_card, "")).status_code == 422

    old = card_number()
    await publisher.publish(
        publisher.event(issued(old, 1, valid_until=date.today() - timedelta(days=2)))
    )

    async def expired() -> bool:
        answer = (await verify(service, "transport", old, "陈大文")).json()
        return bool(answer == {"valid": False, "status": "expired"})

    await eventually(expired)

    lost = card_number()
    await publisher.publish(publisher.event(issued(lost, 1)))
    await publisher.publish(
        publisher.event(
            CardReportedLost(card_number=lost, issue_count=1, reported_at=datetime.now(UTC))
        )
    )

    async def reported_lost() -> bool:
        answer = (await verify(service, "hotel", lost, "陈大文")).json()
        return bool(answer["status"] == "reported_lost")

    await eventually(reported_lost)
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.get(
            "/api/v1/aggregates", headers={"Authorization": "Bearer dev-agency-hmt_office"}
        )
    assert response.status_code == 200
    assert lifecycle_card not in response.text


async def test_webhooks_retry_deliver_once_and_dead_letter(
    service: Service, lifecycle_card: str, infrastructure: dict[str, str]
) -> None:
    hotel, transport = service.receivers["hotel"], service.receivers["transport"]

    async def all_delivered() -> bool:
        return (
            len(hotel.for_card(lifecycle_card)) == 4
            and len(transport.for_card(lifecycle_card)) == 4
        )

    await eventually(all_delivered)
    assert hotel.calls > 2
    assert hotel.bad_signatures == 0
    assert all(count == 1 for count in hotel.delivered.values())
    events = sorted(hotel.for_card(lifecycle_card), key=lambda e: e["time"])
    assert {(e["data"]["issue_count"], e["data"]["status"]) for e in events} == set(LIFECYCLE)
    for event in events:
        assert set(event["data"]) <= POLICIES[Agency.HOTEL].fields | ENVELOPE_FIELDS

    dead = await read_topic(
        infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        topics.DEADLETTER,
        lifecycle_card,
        1,
        30,
        start=TOPIC_ENDS[lifecycle_card],
    )
    finance_dead = [
        d for d in dead if d["data"]["original_topic"] == topics.rights_topic("finance")
    ]
    assert finance_dead, "the never-answering agency's event ends in the dead-letter topic"
    assert "3 attempts" in finance_dead[0]["data"]["error"]
    # The healthy agency had every event long before the dead one's retries were exhausted
    # (4 events x 3 attempts x 0.3 s timeout).
    last_arrival = max(transport.arrival[e["id"]] for e in transport.for_card(lifecycle_card))
    assert last_arrival - PUBLISHED_AT[lifecycle_card] < 3.0

    log = await ops_get(service, "/api/v1/agencies/hotel/deliveries", card_number=lifecycle_card)
    webhook_rows = [r for r in log["deliveries"] if r["channel"] == "webhook"]
    topic_rows = [r for r in log["deliveries"] if r["channel"] == "topic"]
    assert {r["outcome"] for r in webhook_rows} == {"delivered"}
    assert {r["event_id"] for r in webhook_rows} == {e["id"] for e in events}
    assert {r["event_id"] for r in topic_rows} == {e["id"] for e in events}
    assert all(r["delivered_at"] for r in webhook_rows)

    last_report: dict[str, Any] = {}

    async def hotel_converged() -> bool:
        last_report.update(await ops_get(service, "/api/v1/agencies/hotel/reconciliation"))
        return bool(last_report["missing"] == 0)

    try:
        await eventually(hotel_converged, within=240.0)
    except AssertionError:
        raise AssertionError(f"hotel never converged: {last_report}") from None
    finance = await ops_get(service, "/api/v1/agencies/finance/reconciliation")
    assert finance["missing"] >= 1
    assert (await ops_get(service, "/api/v1/agencies/vehicle/reconciliation"))["missing"] == 0


async def test_rate_limit_answers_429_with_retry_after(
    service: Service, lifecycle_card: str
) -> None:
    async with httpx.AsyncClient(base_url=service.url) as client:
        responses = await asyncio.gather(
            *(
                client.get(
                    "/api/v1/verify",
                    params={"number": lifecycle_card, "name": "x"},
                    headers={"Authorization": "Bearer dev-agency-culture_sport"},
                )
                for _ in range(40)
            )
        )
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert limited[0].json()["code"] == "rate_limited"


async def test_restart_rebuilds_register_and_sends_nothing_twice(
    service: Service,
    publisher: EventPublisher,
    lifecycle_card: str,
    infrastructure: dict[str, str],
) -> None:
    hotel = service.receivers["hotel"]

    async def settled() -> bool:
        return len(hotel.for_card(lifecycle_card)) == 4

    await eventually(settled)
    assert await service.stop() < 15
    await publisher.publish(
        publisher.event(
            CardRevoked(
                card_number=lifecycle_card,
                issue_count=2,
                reason="fraud",
                revoked_at=datetime.now(UTC),
            )
        )
    )
    await service.start()
    # The register was rebuilt from the changelog before readiness: issue 1 is still known.
    assert (await verify(service, "hotel", lifecycle_card, "陈大文", 1)).json()["status"] == (
        "superseded"
    )

    async def revoked() -> bool:
        answer = (await verify(service, "hotel", lifecycle_card, "陈大文", 2)).json()
        return bool(answer["status"] == "revoked")

    await eventually(revoked)
    await eventually(lambda: _count(hotel, lifecycle_card, 5))
    events = await read_topic(
        infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        topics.rights_topic("hotel"),
        lifecycle_card,
        5,
        start=TOPIC_ENDS[lifecycle_card],
    )
    assert [(e["data"]["issue_count"], e["data"]["status"]) for e in distinct_by_id(events)] == [
        *LIFECYCLE,
        (2, "revoked"),
    ]
    assert all(count == 1 for count in hotel.delivered.values())


async def _count(receiver: Receiver, number: str, want: int) -> bool:
    return len(receiver.for_card(number)) == want
