"""End-to-end journeys of the three rules that complete the law: an operator's extension of the
issuing time, the calendar behind each due date (a year loaded after the date was computed),
and a card sent by post. Everything goes through the running services' public APIs and topics.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.journeys import (
    CLERK,
    OPS,
    Clients,
    application,
    eventually,
    metric_value,
    of_subject,
    read_topic,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

POSTED = {
    "method": "post",
    "recipient": "陈大文",
    "phone": "+8653188888888",
    "address": "历下区科院路6号3单元401",
    "postcode": "250014",
}


@pytest.fixture
async def centre(system: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The production centre simulator, its failure switches reset afterwards."""
    async with httpx.AsyncClient(base_url=system.url("production-centre"), timeout=30) as client:
        yield client
        await client.post("/api/v1/control", json={"drop_next_callbacks": 0})


async def events_of(topic: str, subject: str, event_type: str) -> list[dict[str, Any]]:
    """Events of one type about one subject, oldest first."""
    found = await read_topic(topic, of_subject([subject]))
    return [e for e in found if e["type"] == f"permits.{event_type}"]


async def until_events(
    topic: str, subject: str, event_type: str, count: int = 1
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        found = await events_of(topic, subject, event_type)
        return found if len(found) >= count else None

    return await eventually(probe, timeout=90)


async def texts_to(clients: Clients, mobile: str, needle: str) -> str:
    """The first SMS to a number that contains `needle`."""

    async def probe() -> str | None:
        return next((m["text"] for m in await clients.sms_to(mobile) if needle in m["text"]), None)

    return await eventually(probe, timeout=60)


async def extend(clients: Clients, app_id: str, days: int) -> httpx.Response:
    return await clients.intake.post(
        f"/api/v1/applications/{app_id}/extension",
        json={"working_days": days, "reason": "交通不便: mountain road closed"},
        headers=OPS,
    )


async def test_an_extension_moves_the_deadline_and_the_applicant_is_told(
    clients: Clients, centre: httpx.AsyncClient
) -> None:
    await centre.post("/api/v1/control", json={"drop_next_callbacks": 2})
    before_metrics = (await clients.issuance.get("/metrics")).text
    body = application(point="ZHANGQIU", language="zh-Hant")
    app_id = await clients.accept(body)
    accepted = await clients.view(app_id)
    due = accepted["due_date"]

    first = await extend(clients, app_id, 4)
    assert first.status_code == 200, first.text
    assert first.json()["extension"]["working_days"] == 4
    assert first.json()["due_date"] > due
    too_long = await extend(clients, app_id, 7)
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "extension_too_long"
    rest = await extend(clients, app_id, 6)
    assert rest.status_code == 200, rest.text

    extended = await until_events("permits.sla.v1", app_id, "sla.extended", 2)
    assert [e["data"]["working_days"] for e in extended] == [4, 6]
    assert extended[0]["data"]["old_due_date"] == due
    assert extended[1]["data"]["old_due_date"] == extended[0]["data"]["new_due_date"]
    final_due = extended[1]["data"]["new_due_date"]
    assert extended[1]["data"]["total_working_days"] == 10
    assert extended[1]["data"]["calendar_version"]

    async def moved() -> dict[str, Any] | None:
        view = await clients.view(app_id)
        return view if view["due_date"] == final_due else None

    view = await eventually(moved)
    assert view["extension"]["working_days"] == 10
    assert view["calendar"]["version"] == extended[1]["data"]["calendar_version"]

    mobile = body["applicant"]["phone"]
    told = await texts_to(clients, mobile, "延長6個工作日")
    assert "交通不便" in told

    await clients.wait_status(app_id, "ready", timeout=150)
    await until_events("permits.sla.v1", app_id, "sla.met")
    late = await extend(clients, app_id, 1)
    assert late.status_code == 409
    assert late.json()["code"] == "extension_too_late"
    after_metrics = (await clients.issuance.get("/metrics")).text
    assert (
        metric_value(after_metrics, "permits_sla_extensions_total", point="ZHANGQIU")
        == metric_value(before_metrics, "permits_sla_extensions_total", point="ZHANGQIU") + 2
    )
    assert (
        metric_value(after_metrics, "permits_sla_extension_working_days_total", point="ZHANGQIU")
        >= 10
    )


async def test_a_posted_card_is_dispatched_and_delivered(clients: Clients) -> None:
    body = {**application(point="SHIZHONG", language="en"), "collection": POSTED}
    app_id = await clients.accept(body)
    ready = await clients.wait_status(app_id, "ready")
    assert ready["collection"]["method"] == "post"
    await until_events("permits.sla.v1", app_id, "sla.met")
    mobile = body["applicant"]["phone"]
    await texts_to(clients, mobile, "will be posted")

    at_counter = await clients.intake.post(f"/api/v1/applications/{app_id}/collect", headers=CLERK)
    assert at_counter.status_code == 409
    tracking = f"EA{random.randrange(10**9):09d}CN"
    dispatched = await clients.intake.post(
        f"/api/v1/applications/{app_id}/dispatch",
        json={"carrier": "EMS", "tracking_number": tracking},
        headers=CLERK,
    )
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["status"] == "dispatched"
    told = await texts_to(clients, mobile, tracking)
    assert "EMS" in told

    page = await clients.intake.get(
        f"/api/v1/applications/{app_id}/status",
        params={"travel_permit_number": body["applicant"]["travel_permit_number"]},
    )
    assert page.json()["tracking"] == {"carrier": "EMS", "tracking_number": tracking}
    assert POSTED["address"] not in page.text

    delivered = await clients.intake.post(f"/api/v1/applications/{app_id}/collect", headers=CLERK)
    assert delivered.status_code == 200, delivered.text
    await clients.wait_status(app_id, "collected")
    await texts_to(clients, mobile, "was delivered")

    events = await read_topic("permits.applications.v1", of_subject([app_id]))
    assert [e["type"].removeprefix("permits.application.") for e in events] == [
        "accepted",
        "approved",
        "in_production",
        "ready",
        "dispatched",
        "collected",
    ]
    assert events[0]["data"]["collection"]["method"] == "post"
    assert events[4]["data"]["tracking_number"] == tracking
    assert events[5]["data"]["method"] == "post"
    assert [e["type"] for e in await read_topic("permits.sla.v1", of_subject([app_id]))] == [
        "permits.sla.scheduled",
        "permits.sla.met",
    ]


async def test_a_date_counted_on_a_provisional_year_moves_when_the_year_is_loaded(
    clients: Clients, centre: httpx.AsyncClient
) -> None:
    """Far years stand in for "next year": 2034 and 2035 are provisional for everyone, so the
    shared broker's other work keeps its calendar. Intake's clock is moved to December 2034;
    production is held so the deadline stays open."""
    await centre.post("/api/v1/control", json={"drop_next_callbacks": 3})
    offset = (date(2034, 12, 11) - date.today()).days
    moved = await clients.intake.put("/api/v1/dev/clock", json={"offset_days": offset}, headers=OPS)
    assert moved.status_code == 200, moved.text
    try:
        body = application(point="LIXIA", language="en")
        body["residence"]["since"] = (date(2034, 12, 11) - timedelta(days=400)).isoformat()
        app_id = await clients.accept(body)
    finally:
        await clients.intake.put("/api/v1/dev/clock", json={"offset_days": 0}, headers=OPS)
    assert (await extend(clients, app_id, 10)).status_code == 200
    extended = (await until_events("permits.sla.v1", app_id, "sla.extended"))[0]["data"]
    due = date.fromisoformat(extended["new_due_date"])
    assert due.year == 2035
    assert 2034 in extended["provisional_years"]

    listed = await clients.issuance.get(
        "/api/v1/sla/provisional", params={"year": 2034}, headers=OPS
    )
    assert listed.status_code == 200, listed.text
    mine = [d for d in listed.json()["deadlines"] if d["application_id"] == app_id]
    assert mine
    assert mine[0]["due_date"] == due.isoformat()

    unique_day = date(2035, 6, 1) + timedelta(days=random.randrange(180))
    arrangement = {
        "holidays": sorted({"2035-01-01", due.isoformat(), unique_day.isoformat()}),
        "workdays": [],
    }
    loaded = await clients.intake.put("/api/v1/calendar/2035", json=arrangement, headers=OPS)
    assert loaded.status_code == 200, loaded.text
    rescheduled = (await until_events("permits.sla.v1", app_id, "sla.rescheduled"))[0]["data"]
    assert rescheduled["old_due_date"] == due.isoformat()
    assert rescheduled["new_due_date"] != due.isoformat()
    assert rescheduled["calendar_version"] != extended["calendar_version"]
    assert 2035 in rescheduled["official_years"]

    async def shown() -> dict[str, Any] | None:
        view = await clients.view(app_id)
        return view if view["due_date"] == rescheduled["new_due_date"] else None

    view = await eventually(shown)
    assert view["calendar"]["version"] == rescheduled["calendar_version"]
    assert view["extension"]["working_days"] == 10
    await texts_to(clients, body["applicant"]["phone"], "is now")

    again = await clients.intake.put("/api/v1/calendar/2035", json=arrangement, headers=OPS)
    assert again.status_code == 200
    calendar_events = await read_topic(
        "permits.calendar.v1",
        lambda e: e.get("subject") == "2035" and e["data"]["holidays"] == arrangement["holidays"],
    )
    assert len(calendar_events) == 1
    assert len(await events_of("permits.sla.v1", app_id, "sla.rescheduled")) == 1
