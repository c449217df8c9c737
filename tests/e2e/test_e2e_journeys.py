"""End-to-end journeys through the four services running as real processes.

A card's whole life (application, collection, loss, reissue, renewal, revocation, expiry), what
each agency sees of it, what the applicant is told, and the metrics operators watch.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.metric_names import used_metric_names
from tests.journeys import (
    CLERK,
    OPS,
    Clients,
    application,
    eventually,
    exported_series,
    follow_up,
    metric_value,
    of_subject,
    read_topic,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
POLICIES = yaml.safe_load(
    (REPO / "services/rights/permits_rights/policies.yaml").read_text("utf-8")
)["agencies"]


async def _issue(clients: Clients, body: dict[str, Any]) -> dict[str, Any]:
    """Accept an application and wait until its card is ready for collection."""
    app_id = await clients.accept(body)
    return await clients.wait_status(app_id, "ready")


async def test_a_card_from_application_to_revocation(clients: Clients) -> None:
    body = application(name="陈大文", latin="CHAN TAI MAN")
    accepted = await clients.submit(body)
    assert accepted.status_code == 201, accepted.text
    app_id = accepted.json()["id"]
    ready = await clients.wait_status(app_id, "ready")
    assert [step["status"] for step in ready["history"]] == [
        "accepted",
        "approved",
        "in_production",
        "ready",
    ]
    card = ready["card"]
    assert card["number"].startswith("810000199001010")
    assert card["issue_count"] == 1
    assert card["issuing_authority"] == "济南市公安局历下分局"
    assert ready["sla"] == "met"

    status_page = await clients.intake.get(
        f"/api/v1/applications/{app_id}/status",
        params={"travel_permit_number": body["applicant"]["travel_permit_number"]},
    )
    assert status_page.status_code == 200
    page = status_page.json()
    assert page["status"] == "ready"
    assert "科院路" in str(page)
    assert body["applicant"]["name"] not in str(page)
    wrong = await clients.intake.get(
        f"/api/v1/applications/{app_id}/status", params={"travel_permit_number": "H00000000"}
    )
    assert wrong.status_code == 404

    collected = await clients.intake.post(f"/api/v1/applications/{app_id}/collect", headers=CLERK)
    assert collected.status_code in (200, 202), collected.text
    await clients.wait_status(app_id, "collected")

    number = card["number"]
    answer = await clients.wait_verify(number, "陈大文", "active")
    assert set(answer) == {"valid", "status", "valid_until"}
    assert answer["valid"] is True
    assert (await clients.verify(number, "CHAN TAI MAN"))["status"] == "active"
    assert (await clients.verify(number, "陈小文"))["status"] == "name_mismatch"

    lost = await clients.intake.post(f"/api/v1/cards/{number}/report-lost", headers=CLERK)
    assert lost.status_code in (200, 202), lost.text
    assert (await clients.wait_verify(number, "陈大文", "reported_lost"))["valid"] is False

    reissued = await _issue(clients, follow_up(body, "reissue", number))
    assert reissued["card"]["number"] == number
    assert reissued["card"]["issue_count"] == 2
    await clients.wait_verify(number, "陈大文", "active", issue_count=2)
    assert (await clients.verify(number, "陈大文", issue_count=1))["status"] == "superseded"
    await clients.intake.post(f"/api/v1/applications/{reissued['id']}/collect", headers=CLERK)
    await clients.wait_status(reissued["id"], "collected")

    renewed = await _issue(clients, follow_up(body, "renewal", number, "details_changed"))
    assert renewed["card"]["issue_count"] == 3
    await clients.wait_verify(number, "陈大文", "active", issue_count=3)
    assert (await clients.verify(number, "陈大文", issue_count=2))["status"] == "superseded"

    revoked = await clients.intake.post(
        f"/api/v1/cards/{number}/revoke", json={"reason": "obtained by fraud"}, headers=OPS
    )
    assert revoked.status_code in (200, 202), revoked.text
    assert (await clients.wait_verify(number, "陈大文", "revoked"))["valid"] is False

    card_events = await read_topic("permits.cards.v1", of_subject([number]))
    assert [e["type"].removeprefix("permits.card.") for e in card_events] == [
        "issued",
        "reported_lost",
        "issued",
        "superseded",
        "issued",
        "superseded",
        "revoked",
    ]
    application_events = await read_topic("permits.applications.v1", of_subject([app_id]))
    assert [e["type"].removeprefix("permits.application.") for e in application_events] == [
        "accepted",
        "approved",
        "in_production",
        "ready",
        "collected",
    ]


async def test_each_agency_sees_only_its_fields(clients: Clients) -> None:
    body = application(
        region="MO",
        name="黄美玲",
        latin="WONG MEI LING",
        sex="F",
        birth=date(1985, 6, 12),
        point="SHIZHONG",
        language="zh-Hans",
    )
    ready = await _issue(clients, body)
    number = ready["card"]["number"]
    assert number.startswith("820000")
    assert int(number[14:17]) % 2 == 0  # women have even sequences
    envelope_data_keys = {"agency", "changed_at"}
    for key, policy in POLICIES.items():
        topic = f"permits.rights.{key}.v1"
        if not policy.get("feed"):
            events = await read_topic(topic, of_subject([number]))
            assert events == [], f"{key} has no per-card feed but got {events}"
            continue

        async def arrived(topic: str = topic) -> list[dict[str, Any]] | None:
            return await read_topic(topic, of_subject([number])) or None

        events = await eventually(arrived)
        data = events[-1]["data"]
        assert data["status"] == "active"
        sent = {k for k, v in data.items() if v is not None} - envelope_data_keys
        assert sent <= set(policy["fields"]), f"{key} received {sent - set(policy['fields'])}"
        assert "travel_permit_number" not in str(events)
        assert body["applicant"]["phone"] not in str(events)


async def test_the_applicant_is_told_in_their_language(clients: Clients) -> None:
    body = application(
        region="TW", name="林志豪", latin="LIN CHIH HAO", language="en", point="GAOXIN"
    )
    ready = await _issue(clients, body)
    await clients.intake.post(f"/api/v1/applications/{ready['id']}/collect", headers=CLERK)
    mobile = body["applicant"]["phone"]

    async def three_messages() -> list[dict[str, Any]] | None:
        sent = await clients.sms_to(mobile)
        return sent if len(sent) >= 3 else None

    messages = await eventually(three_messages)
    texts = " | ".join(m["text"] for m in messages)
    assert ready["id"] in texts
    assert "高新区分局舜华路派出所" in texts or "新泺大街2566号" in texts
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in m["text"][:20]) for m in messages)
    await asyncio.sleep(2)
    assert len(await clients.sms_to(mobile)) == 3, "each message exactly once"

    log = await clients.notify.get(
        "/api/v1/notifications", params={"application_id": ready["id"]}, headers=OPS
    )
    assert log.status_code == 200
    assert mobile not in log.text
    notified = await read_topic("permits.notifications.v1", of_subject([ready["id"]]))
    assert {e["type"] for e in notified} == {"permits.notification.sent"}
    assert mobile not in str(notified)


async def test_metrics_move_and_every_alerted_metric_is_exported(clients: Clients) -> None:
    before = (await clients.intake.get("/metrics")).text
    ready = await _issue(clients, application(point="TIANQIAO"))
    await clients.verify(ready["card"]["number"], "陈大文")
    refused = application(point="TIANQIAO")
    refused["bases"] = []
    assert (await clients.submit(refused)).status_code == 422
    after = (await clients.intake.get("/metrics")).text
    accepted_before = metric_value(
        before, "permits_applications_total", outcome="accepted", point="TIANQIAO"
    )
    assert (
        metric_value(after, "permits_applications_total", outcome="accepted", point="TIANQIAO")
        == accepted_before + 1
    )
    assert (
        metric_value(after, "permits_applications_total", outcome="refused", code="no_basis") >= 1
    )

    expositions = {
        name: (await getattr(clients, name).get("/metrics")).text
        for name in ("intake", "issuance", "rights", "notify", "audit")
    }
    assert metric_value(expositions["issuance"], "permits_cards_issued_total") >= 1
    assert metric_value(expositions["rights"], "permits_verify_requests_total") >= 1
    assert metric_value(expositions["notify"], "permits_notifications_total") >= 1
    exported: set[str] = set()
    for text in expositions.values():
        exported |= exported_series(text)
    missing = set(used_metric_names()) - exported
    assert not missing, f"alerts or dashboard use metrics nobody exports: {sorted(missing)}"


async def test_loading_next_year_reschedules_provisional_deadlines(clients: Clients) -> None:
    due = await clients.intake.get(
        "/api/v1/calendar/due-date", params={"accepted_on": "2026-12-20"}, headers=CLERK
    )
    assert due.json()["provisional"] is True
    loaded = await clients.intake.put(
        "/api/v1/calendar/2027",
        json={
            "holidays": ["2027-01-01", *[f"2027-02-{d:02d}" for d in range(5, 14)]],
            "workdays": ["2027-02-20"],
        },
        headers=OPS,
    )
    assert loaded.status_code in (200, 201, 202), loaded.text

    async def official() -> bool:
        answer = await clients.intake.get(
            "/api/v1/calendar/due-date", params={"accepted_on": "2026-12-20"}, headers=CLERK
        )
        return answer.json()["provisional"] is False

    await eventually(official)


async def test_a_card_expires_after_five_years(clients: Clients) -> None:
    body = application(
        region="HK",
        name="李嘉欣",
        latin="LEE KA YAN",
        sex="F",
        birth=date(1970, 7, 1),
        point="HUAIYIN",
    )
    ready = await _issue(clients, body)
    number = ready["card"]["number"]
    valid_until = date.fromisoformat(ready["card"]["valid_until"])
    assert valid_until.year == date.fromisoformat(ready["card"]["valid_from"]).year + 5
    days = (valid_until - date.today()).days + 2
    try:
        for service in (clients.issuance, clients.notify):
            moved = await service.put("/api/v1/dev/clock", json={"offset_days": days}, headers=OPS)
            assert moved.status_code == 200, moved.text

        async def expired() -> list[dict[str, Any]] | None:
            events = await read_topic("permits.cards.v1", of_subject([number]))
            return [e for e in events if e["type"] == "permits.card.expired"] or None

        await eventually(expired)
        assert (await clients.wait_verify(number, "李嘉欣", "expired"))["valid"] is False
    finally:
        for service in (clients.issuance, clients.notify):
            await service.put("/api/v1/dev/clock", json={"offset_days": 0}, headers=OPS)
