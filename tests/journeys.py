"""What the end-to-end and fault tests do the way real users do: clerks, applicants, agencies.

Every helper goes through the services' public HTTP APIs or reads the public Kafka topics; none
reaches into a service's store.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from permits_intake.domain.examples import application_body

CLERK = {"Authorization": "Bearer dev-clerk"}
OPS = {"Authorization": "Bearer dev-ops"}
KAFKA = os.environ.get(
    "PERMITS_KAFKA_BOOTSTRAP", f"127.0.0.1:{os.environ.get('PERMITS_KAFKA_PORT', '9092')}"
)

T = TypeVar("T")


def agency(key: str) -> dict[str, str]:
    """The development token header of one agency."""
    return {"Authorization": f"Bearer dev-agency-{key}"}


_GIVEN: set[str] = set()


def _unique(draw: Callable[[], str]) -> str:
    """A drawn value no earlier call of this session got. Drawn at random alone, the 2,000
    applicants of a session shared a phone number about one session in five (the fault tests
    then saw four messages for "one" applicant) and a travel permit one in fifty."""
    while True:
        value = draw()
        if value not in _GIVEN:
            _GIVEN.add(value)
            return value


def travel_permit(region: str = "HK") -> str:
    """A fresh travel permit number: a new person for every journey."""
    prefix = {"HK": "H", "MO": "M", "TW": ""}[region]
    return _unique(lambda: f"{prefix}{random.randrange(10**8):08d}")


def phone() -> str:
    """A fresh HK mobile number, so the SMS simulator's log can be filtered per applicant."""
    return _unique(lambda: f"+8529{random.randrange(10**7):07d}")


def application(
    *,
    region: str = "HK",
    name: str = "陈大文",
    latin: str = "CHAN TAI MAN",
    sex: str = "M",
    birth: date = date(1990, 1, 1),
    point: str = "LIXIA",
    language: str = "zh-Hant",
    mobile: str | None = None,
    permit: str | None = None,
) -> dict[str, Any]:
    """A first application that passes every rule: the contract's example, for a new person."""
    return application_body(
        acceptance_point=point,
        applicant__name=name,
        applicant__name_latin=latin,
        applicant__sex=sex,
        applicant__birth_date=birth.isoformat(),
        applicant__region=region,
        applicant__travel_permit_number=permit or travel_permit(region),
        applicant__phone=mobile or phone(),
        applicant__email=f"{uuid.uuid4().hex[:8]}@example.com",
        applicant__language=language,
        residence__since=(date.today() - timedelta(days=400)).isoformat(),
    )


def follow_up(
    body: dict[str, Any], kind: str, card_number: str, reason: str | None = None
) -> dict[str, Any]:
    """The same person applying again: a renewal or a reissue of their card."""
    return {**body, "kind": kind, "card_number": card_number, "renewal_reason": reason}


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0, interval: float = 0.3
) -> T:
    """Poll until the probe returns something truthy; fail with the last answer otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout:.0f}s; last answer: {last!r}")


@dataclass
class Clients:
    """HTTP clients of the services of one running system."""

    intake: httpx.AsyncClient
    issuance: httpx.AsyncClient
    rights: httpx.AsyncClient
    notify: httpx.AsyncClient
    sms: httpx.AsyncClient
    mail: httpx.AsyncClient
    audit: httpx.AsyncClient

    async def submit(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        """What a clerk's tool does: POST with an idempotency key."""
        return await self.intake.post(
            "/api/v1/applications",
            json=body,
            headers={**CLERK, "Idempotency-Key": key or str(uuid.uuid4())},
        )

    async def accept(self, body: dict[str, Any]) -> str:
        """Submit and insist on acceptance; the application id."""
        response = await self.submit(body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def view(self, app_id: str) -> dict[str, Any]:
        """The clerk's view of an application."""
        response = await self.intake.get(f"/api/v1/applications/{app_id}", headers=CLERK)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_status(self, app_id: str, status: str, timeout: float = 90.0) -> dict[str, Any]:
        """Poll the clerk's view until the application reaches a status."""

        async def probe() -> dict[str, Any] | None:
            view = await self.view(app_id)
            return view if view["status"] == status else None

        return await eventually(probe, timeout)

    async def verify(
        self, number: str, name: str, issue_count: int | None = None, key: str = "hotel"
    ) -> dict[str, Any]:
        """An agency checking a presented card."""
        params: dict[str, Any] = {"number": number, "name": name}
        if issue_count is not None:
            params["issue_count"] = issue_count
        response = await self.rights.get("/api/v1/verify", params=params, headers=agency(key))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_verify(
        self, number: str, name: str, status: str, issue_count: int | None = None
    ) -> dict[str, Any]:
        """Poll verification until the register shows a status (it follows events)."""

        async def probe() -> dict[str, Any] | None:
            answer = await self.verify(number, name, issue_count)
            return answer if answer["status"] == status else None

        return await eventually(probe)

    async def sms_to(self, number: str) -> list[dict[str, Any]]:
        """Every SMS the gateway simulator accepted for one phone number."""
        response = await self.sms.get("/api/v1/messages", params={"to": number})
        response.raise_for_status()
        return list(response.json()["items"])

    async def close(self) -> None:
        for client in (
            self.intake,
            self.issuance,
            self.rights,
            self.notify,
            self.sms,
            self.mail,
            self.audit,
        ):
            await client.aclose()


async def read_topic(
    topic: str, keep: Callable[[dict[str, Any]], bool], *, idle: float = 0.5
) -> list[dict[str, Any]]:
    """Every CloudEvent on a topic (from the beginning) that `keep` selects, in offset order."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        found: list[tuple[int, int, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        ends: dict[TopicPartition, int] | None = None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=int(idle * 1000))
            for records in batches.values():
                for record in records:
                    try:
                        event = orjson.loads(record.value or b"{}")
                    except orjson.JSONDecodeError:
                        continue  # another test's poison message on the shared broker
                    if isinstance(event, dict) and keep(event):
                        found.append((record.timestamp, record.offset, event))
            assigned = consumer.assignment()
            if not assigned:
                continue
            if ends is None:
                ends = await consumer.end_offsets(list(assigned))
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                break
        return [event for _, _, event in sorted(found, key=lambda item: (item[0], item[1]))]
    finally:
        await consumer.stop()


def of_subject(subjects: Iterable[str]) -> Callable[[dict[str, Any]], bool]:
    """Select events about the given applications or cards."""
    wanted = set(subjects)
    return lambda event: event.get("subject") in wanted


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include the given ones (0 when absent)."""
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            total += float(value)
    return total


_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported_series(exposition: str) -> set[str]:
    """Every series name a scrape declares, including families that have no sample yet
    (a labelled counter appears only in its `# TYPE` line until first incremented)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            names.add(family)
            names.update(family + suffix for suffix in _SERIES_SUFFIXES.get(kind.strip(), ()))
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names
