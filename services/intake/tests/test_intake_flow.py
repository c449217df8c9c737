"""Status views driven by real events, collection, card actions, calendar and the dev clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from intake_forms import application_body
from intake_harness import (
    CLERK,
    LIXIA_CLERK,
    OPS,
    RunningIntake,
    TopicTap,
    eventually,
    running_intake,
)

from permits_common.domain import permit_number
from permits_common.domain.regions import Region
from permits_common.events import topics
from permits_common.events.models import (
    ApplicationApproved,
    ApplicationInProduction,
    ApplicationReady,
    ApplicationRejected,
    CardIssued,
    EventData,
    SlaAtRisk,
    SlaMet,
    SlaRescheduled,
)
from permits_common.kafka import EventPublisher
from permits_common.mongo import mongo_client
from permits_intake.config import IntakeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="session")
async def issuance(intake: RunningIntake) -> AsyncIterator[EventPublisher]:
    """Stands in for the issuance service: publishes the events it would."""
    publisher = EventPublisher(intake.settings, "issuance-test")
    await publisher.start()
    yield publisher
    await publisher.stop()


async def publish(publisher: EventPublisher, *data: EventData) -> None:
    await publisher.publish_all([publisher.event(item) for item in data])


def fresh_card_number() -> str:
    birth = date(1950, 1, 1) + timedelta(days=uuid.uuid4().int % 20000)
    return permit_number.generate(Region.HK, birth, 1 + uuid.uuid4().int % 998).value


async def submit(intake: RunningIntake, body: dict[str, Any]) -> str:
    response = await intake.client.post(
        "/api/v1/applications",
        json=body,
        headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    application_id: str = response.json()["id"]
    return application_id


async def view(intake: RunningIntake, application_id: str) -> dict[str, Any]:
    response = await intake.client.get(f"/api/v1/applications/{application_id}", headers=CLERK)
    assert response.status_code == 200
    shown: dict[str, Any] = response.json()
    return shown


def card_issued(application_id: str, number: str, permit: str, issue_count: int = 1) -> CardIssued:
    return CardIssued(
        card_number=number,
        issue_count=issue_count,
        application_id=application_id,
        kind="first" if issue_count == 1 else "renewal",
        name="陈大文",
        sex="M",
        birth_date=date(1990, 1, 1),
        region="HK",
        address="历下区科院路6号",
        district="历下区",
        travel_permit_number=permit,
        valid_from=date(2026, 3, 20),
        valid_until=date(2031, 3, 20),
        issuing_authority="济南市公安局历下分局",
        acceptance_point="LIXIA",
    )


async def issue_card(
    intake: RunningIntake, issuance: EventPublisher, body: dict[str, Any]
) -> tuple[str, str]:
    """Take an application all the way to ready with its card issued."""
    application_id = await submit(intake, body)
    number = fresh_card_number()
    permit = body["applicant"]["travel_permit_number"]
    common = {"application_id": application_id, "acceptance_point": "LIXIA"}
    await publish(
        issuance,
        ApplicationApproved(**common, kind="first", card_number=number, issue_count=1),
        ApplicationInProduction(
            **common, card_number=number, issue_count=1, production_request_id="pr-1"
        ),
        card_issued(application_id, number, permit),
        ApplicationReady(**common, card_number=number, issue_count=1, ready_on=date(2026, 3, 20)),
    )

    async def ready() -> bool:
        shown = await view(intake, application_id)
        return shown["status"] == "ready" and shown["card"]["valid_from"] is not None

    await eventually(ready)
    return application_id, number


async def test_status_follows_issuance_events(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = application_body()
    application_id = await submit(intake, body)
    common = {"application_id": application_id, "acceptance_point": "LIXIA"}
    number = fresh_card_number()
    due = date.fromisoformat((await view(intake, application_id))["due_date"])
    await publish(
        issuance,
        ApplicationApproved(**common, kind="first", card_number=number, issue_count=1),
        SlaAtRisk(**common, due_date=due, working_days_left=4),
        SlaRescheduled(
            **common,
            due_date=due + timedelta(days=1),
            accepted_on=intake.clock.today(),
            previous_due_date=due,
            provisional=False,
        ),
    )

    async def approved() -> dict[str, Any] | None:
        shown = await view(intake, application_id)
        ok = shown["status"] == "approved" and shown["sla"] == "at_risk"
        return shown if ok and shown["due_date"] != due.isoformat() else None

    shown = await eventually(approved)
    assert shown["card"] is None
    assert shown["due_date"] == (due + timedelta(days=1)).isoformat()

    await publish(
        issuance,
        card_issued(application_id, number, body["applicant"]["travel_permit_number"]),
        ApplicationReady(**common, card_number=number, issue_count=1, ready_on=due),
        SlaMet(**common, due_date=due, ready_on=due, working_days_taken=19),
        ApplicationInProduction(
            **common, card_number=number, issue_count=1, production_request_id="late"
        ),
    )

    async def ready() -> dict[str, Any] | None:
        shown = await view(intake, application_id)
        return shown if shown["status"] == "ready" and shown["sla"] == "met" else None

    shown = await eventually(ready)
    assert shown["card"]["valid_until"] == "2031-03-20"
    assert shown["card"]["issuing_authority"] == "济南市公安局历下分局"
    assert [h["status"] for h in shown["history"]] == ["accepted", "approved", "ready"]


async def test_repeated_events_change_nothing_and_only_writes_in_place_are_claimed(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = application_body()
    application_id = await submit(intake, body)
    number = fresh_card_number()
    common = {"application_id": application_id, "acceptance_point": "LIXIA"}
    issued = issuance.event(
        card_issued(application_id, number, body["applicant"]["travel_permit_number"])
    )
    events = [
        issuance.event(
            ApplicationApproved(**common, kind="first", card_number=number, issue_count=1)
        ),
        issued,
        issuance.event(
            ApplicationReady(
                **common, card_number=number, issue_count=1, ready_on=date(2026, 3, 20)
            )
        ),
    ]
    await issuance.publish_all(events + events)
    client = mongo_client(intake.settings)
    claims = client[intake.settings.mongo_database]["processed_events"]
    try:

        async def claimed() -> set[str]:
            keys = [f"{intake.settings.intake_group}|{event.id}" for event in events]
            found = claims.find({"_id": {"$in": keys}})
            return {str(doc["_id"]).split("|", 1)[1] async for doc in found}

        await eventually(claimed)
        shown = await eventually(
            lambda: _with_status(intake, application_id, "ready"),
        )
        assert [h["status"] for h in shown["history"]] == ["accepted", "approved", "ready"]
        assert shown["card"]["number"] == number
        assert await claimed() == {issued.id}, "status events are steps keyed by status"
    finally:
        await client.close()


async def _with_status(intake: RunningIntake, application_id: str, status: str) -> Any:
    shown = await view(intake, application_id)
    return shown if shown["status"] == status else None


async def test_ready_is_shown_only_with_the_whole_card(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    """`application.ready` and `card.issued` travel on two topics; whichever the views see
    first, the application is never shown ready without its issued card."""
    body = application_body()
    application_id = await submit(intake, body)
    number = fresh_card_number()
    common = {"application_id": application_id, "acceptance_point": "LIXIA"}
    await publish(
        issuance,
        ApplicationApproved(**common, kind="first", card_number=number, issue_count=1),
        ApplicationInProduction(
            **common, card_number=number, issue_count=1, production_request_id="pr-1"
        ),
        ApplicationReady(**common, card_number=number, issue_count=1, ready_on=date(2026, 3, 20)),
    )
    steps = intake.app.state.runtime.store.steps

    async def ready_step_recorded() -> bool:
        return await steps.find_one({"_id": f"{application_id}|ready"}) is not None

    await eventually(ready_step_recorded)
    shown = await view(intake, application_id)
    assert shown["status"] == "in_production"
    assert shown["card"] is None
    assert [h["status"] for h in shown["history"]] == ["accepted", "approved", "in_production"]

    await publish(
        issuance, card_issued(application_id, number, body["applicant"]["travel_permit_number"])
    )

    async def ready() -> dict[str, Any] | None:
        shown = await view(intake, application_id)
        return shown if shown["status"] == "ready" else None

    shown = await eventually(ready)
    assert shown["card"] == {
        "number": number,
        "issue_count": 1,
        "valid_from": "2026-03-20",
        "valid_until": "2031-03-20",
        "issuing_authority": "济南市公安局历下分局",
    }
    assert [h["status"] for h in shown["history"]][-1] == "ready"


async def test_collect_only_from_ready_and_releases_the_person(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = application_body()
    application_id, number = await issue_card(intake, issuance, body)
    person = body["applicant"]["travel_permit_number"]

    other = application_body()
    not_ready = await submit(intake, other)
    refused = await intake.client.post(f"/api/v1/applications/{not_ready}/collect", headers=CLERK)
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_state"

    elsewhere = await intake.client.post(
        f"/api/v1/applications/{application_id}/collect",
        headers={"Authorization": "Bearer dev-clerk-nope"},
    )
    assert elsewhere.status_code == 401

    async with TopicTap(intake.settings, topics.APPLICATIONS) as tap:
        collected = await intake.client.post(
            f"/api/v1/applications/{application_id}/collect", headers=LIXIA_CLERK
        )
        assert collected.status_code == 200, collected.text
        assert collected.json()["status"] == "collected"
        event = await tap.wait_for(
            lambda e: e.subject == application_id and e.type == "permits.application.collected"
        )
    assert event.data.card_number == number

    again = await intake.client.post(
        f"/api/v1/applications/{application_id}/collect", headers=CLERK
    )
    assert again.status_code == 409

    first_again = application_body(applicant__travel_permit_number=person)
    holder = await intake.client.post(
        "/api/v1/applications",
        json=first_again,
        headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert holder.status_code == 409
    assert holder.json()["code"] == "duplicate_open_application"

    renewal = application_body(
        kind="renewal",
        card_number=number,
        renewal_reason="details_changed",
        applicant__travel_permit_number=person,
    )
    await submit(intake, renewal)

    stranger = application_body(kind="renewal", card_number=number, renewal_reason="damaged")
    response = await intake.client.post(
        "/api/v1/applications",
        json=stranger,
        headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "card_not_holders"


async def test_rejection_closes_the_application(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = application_body()
    application_id = await submit(intake, body)
    await publish(
        issuance,
        ApplicationRejected(
            application_id=application_id,
            acceptance_point="LIXIA",
            code="residence_too_short",
            message="the register shows a later residence start",
        ),
    )

    async def rejected() -> dict[str, Any] | None:
        shown = await view(intake, application_id)
        return shown if shown["status"] == "rejected" else None

    shown = await eventually(rejected)
    assert shown["rejection"] == {
        "code": "residence_too_short",
        "message": "the register shows a later residence start",
    }
    await submit(
        intake,
        application_body(applicant__travel_permit_number=body["applicant"]["travel_permit_number"]),
    )


async def test_report_lost_and_revoke_publish_card_events(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = application_body()
    _, number = await issue_card(intake, issuance, body)
    async with TopicTap(intake.settings, topics.CARDS) as tap:
        lost = await intake.client.post(f"/api/v1/cards/{number}/report-lost", headers=LIXIA_CLERK)
        assert lost.status_code == 200, lost.text
        assert lost.json() == {"card_number": number, "issue_count": 1, "status": "reported_lost"}
        event = await tap.wait_for(
            lambda e: e.subject == number and e.type == "permits.card.reported_lost"
        )
        assert event.data.acceptance_point == "LIXIA"
        twice = await intake.client.post(f"/api/v1/cards/{number}/report-lost", headers=CLERK)
        assert twice.status_code == 409
        assert twice.json()["code"] == "invalid_state"

        revoked = await intake.client.post(
            f"/api/v1/cards/{number}/revoke", json={"reason": "obtained by fraud"}, headers=OPS
        )
        assert revoked.status_code == 200
        assert revoked.json()["status"] == "revoked"
        event = await tap.wait_for(
            lambda e: e.subject == number and e.type == "permits.card.revoked"
        )
        assert event.data.reason == "obtained by fraud"
        again = await intake.client.post(
            f"/api/v1/cards/{number}/revoke", json={"reason": "again"}, headers=OPS
        )
        assert again.status_code == 409
    renewal = application_body(
        kind="reissue",
        card_number=number,
        applicant__travel_permit_number=body["applicant"]["travel_permit_number"],
    )
    refused = await intake.client.post(
        "/api/v1/applications", json=renewal, headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "card_not_replaceable"
    unknown = await intake.client.post(
        f"/api/v1/cards/{fresh_card_number()}/report-lost", headers=CLERK
    )
    assert unknown.status_code == 404
    empty_reason = await intake.client.post(
        f"/api/v1/cards/{number}/revoke", json={"reason": ""}, headers=OPS
    )
    assert empty_reason.status_code == 422


async def test_calendar_due_dates_and_loading(intake: RunningIntake) -> None:
    known = await intake.client.get(
        "/api/v1/calendar/due-date", params={"accepted_on": "2026-09-18"}, headers=CLERK
    )
    assert known.status_code == 200
    assert known.json() == {"due_date": "2026-10-22", "provisional": False, "working_days": 20}

    year = 2090 + uuid.uuid4().int % 9
    accepted = f"{year}-03-01"
    before = await intake.client.get(
        "/api/v1/calendar/due-date", params={"accepted_on": accepted}, headers=OPS
    )
    assert before.json()["provisional"] is True
    holidays = [(date(year, 3, 2) + timedelta(days=d)).isoformat() for d in range(14)]
    async with TopicTap(intake.settings, topics.CALENDAR) as tap:
        loaded = await intake.client.put(
            f"/api/v1/calendar/{year}", json={"holidays": holidays, "workdays": []}, headers=OPS
        )
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["official"] is True
        event = await tap.wait_for(lambda e: e.subject == str(year))
    assert event.type == "permits.calendar.loaded"
    after = await intake.client.get(
        "/api/v1/calendar/due-date", params={"accepted_on": accepted}, headers=OPS
    )
    assert after.json()["provisional"] is False
    assert after.json()["due_date"] > before.json()["due_date"]

    stray = await intake.client.put(
        f"/api/v1/calendar/{year}", json={"holidays": ["2001-01-01"], "workdays": []}, headers=OPS
    )
    assert stray.status_code == 422
    assert stray.json()["code"] == "invalid_request"
    bad_day = await intake.client.get(
        "/api/v1/calendar/due-date", params={"accepted_on": "2026-02-30"}, headers=OPS
    )
    assert bad_day.status_code == 422


async def test_dev_clock_moves_accepted_on(intake: RunningIntake) -> None:
    try:
        moved = await intake.client.put("/api/v1/dev/clock", json={"offset_days": 30}, headers=OPS)
        assert moved.status_code == 200
        expected = (datetime.now(UTC) + timedelta(days=30)).date()
        assert abs((date.fromisoformat(moved.json()["today"]) - expected).days) <= 1
        response = await intake.client.post(
            "/api/v1/applications",
            json=application_body(),
            headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.json()["accepted_on"] == moved.json()["today"]
    finally:
        await intake.client.put("/api/v1/dev/clock", json={"offset_days": 0}, headers=OPS)


async def test_a_year_loaded_on_one_replica_is_used_by_another(intake: RunningIntake) -> None:
    replica_settings = intake_settings_like(intake)
    year = 2080 + uuid.uuid4().int % 9
    params = {"accepted_on": f"{year}-06-01"}
    async with running_intake(replica_settings, drop_database=False) as replica:
        before = await replica.client.get("/api/v1/calendar/due-date", params=params, headers=OPS)
        assert before.json()["provisional"] is True
        loaded = await intake.client.put(
            f"/api/v1/calendar/{year}",
            json={"holidays": [f"{year}-06-02"], "workdays": []},
            headers=OPS,
        )
        assert loaded.status_code == 200

        async def official() -> bool:
            response = await replica.client.get(
                "/api/v1/calendar/due-date", params=params, headers=OPS
            )
            return response.json()["provisional"] is False

        await eventually(official)


def intake_settings_like(intake: RunningIntake) -> IntakeSettings:
    """Another replica: same database, its own consumer group."""
    return intake.settings.model_copy(
        update={"intake_group": f"permits-intake-test-{uuid.uuid4().hex[:10]}"}
    )
