"""Faults against the running system: crashes, broker and store outages, poison messages.

After each: every application intake acknowledged reaches `ready`, no card number is given
twice, every agency feed converges to the register, every applicant is told each thing once,
and intake answers 503 (never 500) while a dependency is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from tests.journeys import (
    CLERK,
    KAFKA,
    OPS,
    Clients,
    application,
    eventually,
    of_subject,
    read_topic,
)
from tests.system import build_system, clients_of

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

LOAD = int(os.environ.get("PERMITS_FAULT_LOAD", "1000"))
REPO = Path(__file__).resolve().parents[2]
FEED_AGENCIES = [
    key
    for key, policy in yaml.safe_load(
        (REPO / "services/rights/permits_rights/policies.yaml").read_text("utf-8")
    )["agencies"].items()
    if policy.get("feed")
]


class Load:
    """Clerks submitting applications concurrently, retrying with the same key as real tools do."""

    def __init__(self, clients: Clients, total: int, concurrency: int = 16) -> None:
        self.clients = clients
        self.total = total
        self.concurrency = concurrency
        self.acknowledged: dict[str, dict[str, Any]] = {}
        self.statuses: Counter[int] = Counter()
        self.submitted = 0

    async def _submit_one(self, body: dict[str, Any]) -> None:
        key = str(uuid.uuid4())
        for _attempt in range(600):
            try:
                response = await self.clients.submit(body, key=key)
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                self.acknowledged[response.json()["id"]] = body
                return
            assert response.status_code == 503, response.text
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 5)
        raise AssertionError("an application was never acknowledged")

    async def run(self) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for index in range(self.total):
            queue.put_nowait(
                application(
                    point=random.choice(["LIXIA", "GAOXIN", "LAIWU"]),
                    sex="M" if index % 2 else "F",
                    # Numbers run out after 500 people of one birth date, sex and region.
                    birth=date(1960, 1, 1) + timedelta(days=index % 15000),
                )
            )

        async def clerk() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                self.submitted += 1
                await self._submit_one(body)

        await asyncio.gather(*(clerk() for _ in range(self.concurrency)))


async def _all_ready(clients: Clients, app_ids: list[str], timeout: float) -> None:
    pending = set(app_ids)
    reported = [time.monotonic()]

    async def probe() -> bool:
        for app_id in list(pending):
            view = await clients.view(app_id)
            if view["status"] in ("ready", "collected"):
                pending.discard(app_id)
            elif view["status"] == "rejected":
                pytest.fail(f"{app_id} was rejected: {view.get('rejection')}")
        if pending and time.monotonic() - reported[0] > 30:
            reported[0] = time.monotonic()
            _progress(f"{len(app_ids) - len(pending)} of {len(app_ids)} ready")
        return not pending

    try:
        await eventually(probe, timeout=timeout, interval=2.0)
    except AssertionError:
        raise AssertionError(f"{len(pending)} acknowledged applications never got ready") from None


def _progress(message: str) -> None:
    """Long fault runs say where they are (visible with `pytest -s`, and in CI logs on failure)."""
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _check_invariants(clients: Clients, load: Load, namespace: str = "") -> None:
    app_ids = list(load.acknowledged)
    _progress(f"{len(app_ids)} acknowledged; waiting until every one is ready")
    await _all_ready(clients, app_ids, timeout=600)
    _progress("all ready; checking card numbers")
    issued = await read_topic(
        f"{namespace}permits.cards.v1",
        lambda e: (
            e["type"] == "permits.card.issued" and e["data"]["application_id"] in load.acknowledged
        ),
    )
    numbers_by_application: dict[str, set[tuple[str, int]]] = {}
    for event in issued:
        data = event["data"]
        numbers_by_application.setdefault(data["application_id"], set()).add(
            (data["card_number"], data["issue_count"])
        )
    assert set(numbers_by_application) == set(app_ids)
    assert all(len(cards) == 1 for cards in numbers_by_application.values()), "two cards for one"
    numbers = [next(iter(cards))[0] for cards in numbers_by_application.values()]
    assert len(numbers) == len(set(numbers)), "a card number was given twice"

    _progress("card numbers unique; waiting for every agency feed to converge")
    for key in FEED_AGENCIES:

        async def converged(key: str = key) -> dict[str, Any] | None:
            response = await clients.rights.get(
                f"/api/v1/agencies/{key}/reconciliation", headers=OPS
            )
            assert response.status_code == 200, response.text
            body = response.json()
            return body if body.get("missing") == 0 else None

        await eventually(converged, timeout=180, interval=2.0)

    _progress("feeds converged; waiting until every applicant got both messages")

    async def everyone_told() -> bool:
        for body in load.acknowledged.values():
            if len(await clients.sms_to(body["applicant"]["phone"])) < 2:
                return False
        return True

    await eventually(everyone_told, timeout=300, interval=3.0)
    await asyncio.sleep(3)
    for body in load.acknowledged.values():
        sent = await clients.sms_to(body["applicant"]["phone"])
        assert len(sent) == 2, f"expected receipt and ready message once each, got {len(sent)}"
    _progress("every applicant told each thing once")


async def _kill_in_turn_during(load: Load, system: Any, victims: list[str]) -> None:
    """kill -9 each victim once, spread evenly over the load, and start it again a second later."""
    for index, victim in enumerate(victims, start=1):
        while load.submitted < load.total * index // (len(victims) + 1):
            await asyncio.sleep(0.1)
        _progress(f"kill -9 {victim} after {load.submitted} submissions")
        system.kill(victim)
        await asyncio.sleep(1)
        await asyncio.to_thread(system.restart, victim)


async def test_kill_9_of_each_service_during_a_load(system: Any, clients: Clients) -> None:
    load = Load(clients, LOAD)
    victims = ["intake", "issuance", "rights", "notify"]
    _progress(f"submitting {LOAD} applications, killing each service once on the way")
    started = time.monotonic()
    await asyncio.gather(load.run(), _kill_in_turn_during(load, system, victims))
    _progress(f"load done in {time.monotonic() - started:.0f}s: {dict(load.statuses)}")
    assert len(load.acknowledged) == LOAD
    assert 500 not in load.statuses
    await _check_invariants(clients, load)


def _infra_is_ours(variable: str) -> bool:
    return not os.environ.get(variable) or os.environ.get("PERMITS_FAULTS_OWN_INFRA") == "1"


async def _outage(
    system: Any, clients: Clients, server: str, while_down: Callable[[], Awaitable[None]]
) -> None:
    """Load, stop a server, check how intake answers, start it again, load again; then the
    invariants hold for both loads."""
    before = Load(clients, 20)
    await before.run()
    await asyncio.to_thread(system.infra.down, server)
    try:
        await while_down()
    finally:
        await asyncio.to_thread(system.infra.up, server)
    after = Load(clients, 20)
    await after.run()
    assert 500 not in before.statuses + after.statuses
    both = Load(clients, 0)
    both.acknowledged = {**before.acknowledged, **after.acknowledged}
    await _check_invariants(clients, both)


@pytest.mark.skipif(
    not _infra_is_ours("PERMITS_KAFKA_BOOTSTRAP"),
    reason="Kafka given by PERMITS_KAFKA_BOOTSTRAP is not ours to stop",
)
async def test_kafka_stop_and_restart(system: Any, clients: Clients) -> None:
    async def refused_with_retry_after() -> None:
        async def intake_noticed() -> bool:
            return (await clients.intake.get("/readyz")).status_code == 503

        await eventually(intake_noticed, timeout=30)
        refused = await clients.submit(application())
        assert refused.status_code == 503, refused.text
        assert refused.headers.get("Retry-After")

    await _outage(system, clients, "kafka", refused_with_retry_after)


@pytest.mark.skipif(
    not _infra_is_ours("PERMITS_MONGO_URL"),
    reason="the store given by PERMITS_MONGO_URL is not ours to stop",
)
async def test_store_stop_and_restart(system: Any, clients: Clients) -> None:
    async def only_503() -> None:
        answers: Counter[int] = Counter()
        for _ in range(10):
            with contextlib.suppress(httpx.TransportError):
                answers[(await clients.submit(application())).status_code] += 1
            missing = f"/api/v1/applications/{uuid.uuid4()}"
            answers[(await clients.intake.get(missing, headers=CLERK)).status_code] += 1
        assert set(answers) == {503}, f"while the store was down intake answered {answers}"

    await _outage(system, clients, "store", only_503)


SHUTDOWN_GRACE_SECONDS = 10.0
"""The services' default `PERMITS_SHUTDOWN_GRACE_SECONDS`."""


@pytest.mark.skipif(
    not _infra_is_ours("PERMITS_KAFKA_BOOTSTRAP"),
    reason="Kafka given by PERMITS_KAFKA_BOOTSTRAP is not ours to stop",
)
async def test_every_service_stops_in_bounded_time_while_kafka_is_down(
    system: Any, clients: Clients
) -> None:
    services = ["intake", "issuance", "rights", "notify"]
    await asyncio.to_thread(system.infra.down, "kafka")
    stopped: dict[str, tuple[float, int]] = {}
    try:
        await asyncio.sleep(3)  # let every client notice the broker is gone
        for name in services:
            stopped[name] = await asyncio.to_thread(system.terminate, name, 45.0)
    finally:
        await asyncio.to_thread(system.infra.up, "kafka")
        for name in services:
            await asyncio.to_thread(system.restart, name)
    slow = {
        name: f"{seconds:.1f} s, exit code {code}"
        for name, (seconds, code) in stopped.items()
        if seconds > SHUTDOWN_GRACE_SECONDS + 5 or code == -signal.SIGKILL
    }
    assert not slow, f"did not stop on SIGTERM within the grace period: {slow}"
    after = await clients.submit(application())
    assert after.status_code == 201, after.text
    await _all_ready(clients, [after.json()["id"]], timeout=120)


async def test_a_poison_message_on_every_consumed_topic(clients: Clients) -> None:
    marker = uuid.uuid4().hex
    consumed = [
        "permits.applications.v1",
        "permits.cards.v1",
        "permits.sla.v1",
        "permits.calendar.v1",
    ]
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for topic in consumed:
            await producer.send_and_wait(
                topic, f"not an event {marker}".encode(), key=marker.encode()
            )
            await producer.send_and_wait(
                topic,
                b'{"specversion":"1.0","id":"' + marker.encode() + b'","source":"x",'
                b'"type":"permits.application.accepted","time":"2026-01-01T00:00:00Z",'
                b'"subject":"' + marker.encode() + b'","data":{"application_id":1}}',
                key=marker.encode(),
            )
    finally:
        await producer.stop()

    least_consumers = {
        "permits.applications.v1": 3,  # intake, issuance, notify
        "permits.cards.v1": 4,  # intake, issuance, rights, notify
        "permits.sla.v1": 1,
        "permits.calendar.v1": 1,
    }

    def consumers_by_topic(found: set[tuple[str, str]]) -> dict[str, set[str]]:
        return {topic: {c for t, c in found if t == topic} for topic in consumed}

    async def dead_lettered() -> set[tuple[str, str]] | None:
        """Once every consumer of every topic has dead-lettered (each at its own pace: one
        that batches a moment longer came after the test had stopped waiting)."""
        letters = await read_topic("permits.deadletter.v1", of_subject([marker]))
        found = {(e["data"]["original_topic"], e["data"]["consumer"]) for e in letters}
        by_topic = consumers_by_topic(found)
        enough = all(len(by_topic[t]) >= n for t, n in least_consumers.items())
        return found if enough else None

    found = await eventually(dead_lettered, timeout=120)
    consumers_of = consumers_by_topic(found)
    assert len(consumers_of["permits.applications.v1"]) >= 3  # intake, issuance, notify
    assert len(consumers_of["permits.cards.v1"]) >= 4  # intake, issuance, rights, notify

    app_id = await clients.accept(application())
    await clients.wait_status(app_id, "ready")


async def _first_application_through(clients: Clients) -> None:
    """Submit until one application gets ready: consumers that start at the end of the topics
    skip what was published before they were assigned their partitions."""
    for _attempt in range(6):
        answer = await clients.submit(application())
        assert answer.status_code == 201, answer.text
        with contextlib.suppress(AssertionError):
            await _all_ready(clients, [answer.json()["id"]], timeout=45)
            return
    pytest.fail("no application got ready on the replicated system")


REPLICAS_NAMESPACE = "replicas."


@pytest.fixture(scope="module")
def two_of_everything(infrastructure: dict[str, str]) -> Iterator[Any]:
    """A second system with two processes of every service behind local balancers, on topics
    of its own: the session's system runs beside it on the same broker."""
    stack = build_system(
        infrastructure,
        port_offset=400,
        replicas=2,
        offset_reset="latest",
        topic_namespace=REPLICAS_NAMESPACE,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


async def test_two_replicas_of_everything_with_one_of_each_killed(two_of_everything: Any) -> None:
    system = two_of_everything
    clients = clients_of(system)
    try:
        await _first_application_through(clients)
        body, key = application(), str(uuid.uuid4())
        async with (
            httpx.AsyncClient(base_url=system.url("intake-1"), timeout=30) as first,
            httpx.AsyncClient(base_url=system.url("intake-2"), timeout=30) as second,
        ):
            headers = {**CLERK, "Idempotency-Key": key}
            answers = await asyncio.gather(
                first.post("/api/v1/applications", json=body, headers=headers),
                second.post("/api/v1/applications", json=body, headers=headers),
            )
        assert [answer.status_code for answer in answers] == [201, 201], [a.text for a in answers]
        assert answers[0].json()["id"] == answers[1].json()["id"], "one key, one application"

        load = Load(clients, LOAD)
        victims = ["issuance-1", "rights-2", "notify-1", "intake-2"]
        _progress(f"two of everything: submitting {LOAD}, killing one replica of each")
        await asyncio.gather(load.run(), _kill_in_turn_during(load, system, victims))
        assert len(load.acknowledged) == LOAD
        assert 500 not in load.statuses
        load.acknowledged[answers[0].json()["id"]] = body
        await _check_invariants(clients, load, REPLICAS_NAMESPACE)
        accepted = await read_topic(
            f"{REPLICAS_NAMESPACE}permits.applications.v1",
            lambda e: (
                e["type"] == "permits.application.accepted"
                and e["subject"] == answers[0].json()["id"]
            ),
        )
        assert len({event["id"] for event in accepted}) == 1
    finally:
        await clients.close()
