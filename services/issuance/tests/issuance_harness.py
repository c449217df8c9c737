"""Issuance test harness: real worker and simulator processes, a Kafka watcher, event builders."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import MongoClient

from permits_common.clock import Clock
from permits_common.events.envelope import Event, PoisonMessageError, decode
from permits_common.events.models import (
    Applicant,
    ApplicationAccepted,
    Basis,
    Biometrics,
    Residence,
)
from permits_common.settings import CommonSettings

SECRET = "dev-production-callback-secret-tests"


def free_port() -> int:
    """An ephemeral port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 40) -> None:
    """Poll until the URL answers 200, failing early if the process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not up: {log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM our own child, then SIGKILL it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class IssuanceStack:
    """A worker, its simulator, and how to reach them."""

    url: str
    simulator_url: str
    prefix: str
    group: str
    database: str
    env: dict[str, str]

    def application_id(self) -> str:
        """An id this worker acts on (and no other test's worker does)."""
        return f"{self.prefix}{uuid.uuid4().hex[:12]}"


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child process whose output goes to a log file."""
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=handle, stderr=subprocess.STDOUT
    )


@pytest.fixture(scope="module")
def issuance_stack(
    infrastructure: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuanceStack]:
    """The simulator and one isolated issuance worker as real processes."""
    unique = uuid.uuid4().hex[:10]
    logs = tmp_path_factory.mktemp(f"issuance-{unique}")
    port, simulator_port = free_port(), free_port()
    env = {
        **os.environ,
        **infrastructure,
        "PERMITS_ENV": "test",
        "PERMITS_LOG_LEVEL": "WARNING",
        "PERMITS_PRODUCTION_CALLBACK_SECRET": SECRET,
        "PERMITS_ISSUANCE_GROUP": f"permits-issuance-test-{unique}",
        "PERMITS_MONGO_DATABASE": f"permits_test_{unique}",
        "PERMITS_ISSUANCE_PORT": str(port),
        "PERMITS_ISSUANCE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PERMITS_ISSUANCE_OFFSET_RESET": "latest",
        "PERMITS_ISSUANCE_ONLY_APPLICATION_PREFIX": f"isstest-{unique}-",
        "PERMITS_PRODUCTION_CENTRE_URL": f"http://127.0.0.1:{simulator_port}",
        "PERMITS_PRODUCTION_RETRY_BASE_SECONDS": "0.2",
        "PERMITS_PRODUCTION_RETRY_MAX_SECONDS": "1",
        "PERMITS_PRODUCTION_SCAN_SECONDS": "0.2",
        "PERMITS_PRODUCTION_CALLBACK_TIMEOUT_SECONDS": "2",
    }
    simulator = start_process(
        ["-m", "permits_issuance.simulator", "--port", str(simulator_port), "--delay", "0.2"],
        env,
        logs / "simulator.log",
    )
    worker = start_process(["-m", "permits_issuance"], env, logs / "worker.log")
    try:
        wait_http(f"http://127.0.0.1:{simulator_port}/healthz", simulator, logs / "simulator.log")
        wait_http(f"http://127.0.0.1:{port}/readyz", worker, logs / "worker.log")
        yield IssuanceStack(
            url=f"http://127.0.0.1:{port}",
            simulator_url=f"http://127.0.0.1:{simulator_port}",
            prefix=f"isstest-{unique}-",
            group=env["PERMITS_ISSUANCE_GROUP"],
            database=env["PERMITS_MONGO_DATABASE"],
            env=env,
        )
    finally:
        stop(worker)
        stop(simulator)
        client: MongoClient[dict[str, Any]] = MongoClient(infrastructure["PERMITS_MONGO_URL"])
        with client:
            client.drop_database(env["PERMITS_MONGO_DATABASE"])


class EventWatcher:
    """Reads topics from their end at start-up on, without a consumer group."""

    def __init__(self, bootstrap: str, topic_names: list[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        self._topics = topic_names
        self._bootstrap = bootstrap
        self.events: list[Event[Any]] = []
        self.raw: list[tuple[str, bytes | None, bytes | None]] = []

    async def start(self) -> None:
        """Assign every partition and pin the start position to the current end."""
        await self._consumer.start()
        metadata = AIOKafkaProducer(bootstrap_servers=self._bootstrap)
        await metadata.start()
        try:
            partitions = [
                TopicPartition(name, partition)
                for name in self._topics
                for partition in sorted(await metadata.partitions_for(name))
            ]
        finally:
            await metadata.stop()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self._consumer.position(partition)

    async def stop(self) -> None:
        """Leave."""
        await self._consumer.stop()

    async def poll(self) -> None:
        """Fetch what arrived."""
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                self.raw.append((record.topic, record.key, record.value))
                try:
                    self.events.append(decode(record.value or b""))
                except PoisonMessageError:
                    continue

    async def wait_until(
        self, condition: Callable[[list[Event[Any]]], bool], within: float = 20.0
    ) -> list[Event[Any]]:
        """Poll until the events seen so far satisfy the condition."""
        deadline = time.monotonic() + within
        while not condition(self.events):
            if time.monotonic() > deadline:
                seen = [(e.type, e.subject) for e in self.events][-30:]
                raise TimeoutError(f"condition not met; last events: {seen}")
            await self.poll()
        return self.events


def of_subject(events: list[Event[Any]], subject: str, event_type: str | None = None) -> list[Any]:
    """Events about one application or card, optionally of one type (dropping repeated ids)."""
    found: list[Event[Any]] = []
    ids: set[str] = set()
    for event in events:
        wanted = event_type is None or event.type == f"permits.{event_type}"
        if wanted and event.subject == subject and event.id not in ids:
            ids.add(event.id)
            found.append(event)
    return found


def accepted(
    application_id: str,
    *,
    kind: str = "first",
    card_number: str | None = None,
    accepted_on: date | None = None,
    travel_permit_number: str | None = None,
    birth_date: date | None = None,
    sex: str = "M",
    point: str = "LIXIA",
) -> ApplicationAccepted:
    """An `application.accepted` as intake publishes it (no contact data: notify stays quiet)."""
    from permits_common.domain.calendar import WorkingDayCalendar

    on = accepted_on or Clock().today()
    due = WorkingDayCalendar().due_date(on)
    return ApplicationAccepted(
        application_id=application_id,
        acceptance_point=point,
        kind=kind,
        card_number=card_number,
        renewal_reason="expiring" if kind == "renewal" else None,
        accepted_on=on,
        due_date=due.due_date,
        due_date_provisional=due.provisional,
        applicant=Applicant(
            name="陈大文",
            name_latin="CHAN TAI MAN",
            sex=sex,
            birth_date=birth_date or date(1990, 1, 1),
            region="HK",
            travel_permit_number=travel_permit_number or f"H{random.randrange(10**8):08d}",
        ),
        residence=Residence(address="历下区科院路6号", district="历下区", since=date(2024, 1, 10)),
        bases=[Basis(type="employment", evidence="labour contract 2025-0117")],
        biometrics=Biometrics(photo_ref="ph-001", fingerprints_ref="fp-001"),
    )


def kafka_settings(infrastructure: dict[str, str]) -> CommonSettings:
    """Settings pointing at the test infrastructure."""
    return CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
