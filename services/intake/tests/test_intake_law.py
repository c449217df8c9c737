"""Extension, collection by post and the calendar behind each due date, through the intake API
on the real broker and store (issuance stood in for by a publisher of its events)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from intake_forms import application_body
from intake_harness import CLERK, OPS, RunningIntake, TopicTap, eventually
from test_intake_flow import issuance, issue_card, publish, submit, view

from permits_common.events import topics
from permits_common.events.models import SlaAtRisk, SlaExtended
from permits_common.kafka import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
__all__ = ["issuance"]

POSTED = {
    "method": "post",
    "recipient": "陈大文",
    "phone": "+8653188888888",
    "address": "历下区科院路6号3单元401",
    "postcode": "250014",
}


def posted_body(**collection: Any) -> dict[str, Any]:
    return application_body(collection={**POSTED, **collection})


async def extend(intake: RunningIntake, application_id: str, days: int, **headers: str) -> Any:
    return await intake.client.post(
        f"/api/v1/applications/{application_id}/extension",
        json={"working_days": days, "reason": "交通不便: mountain road closed"},
        headers=headers or OPS,
    )


async def test_a_post_request_needs_a_usable_address(intake: RunningIntake) -> None:
    for broken in ({"address": ""}, {"postcode": "2500"}, {"recipient": None}):
        response = await intake.client.post(
            "/api/v1/applications",
            json=posted_body(**broken),
            headers={**CLERK, "Idempotency-Key": f"post-{random.random()}"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "collection_address_invalid"
        assert response.json()["errors"][0]["field"].startswith("collection.")
    counter = await submit(intake, application_body(collection={"method": "counter"}))
    assert (await view(intake, counter))["collection"]["method"] == "counter"


async def test_a_posted_card_goes_ready_dispatched_collected(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    body = posted_body()
    early = await submit(intake, posted_body())
    too_early = await intake.client.post(
        f"/api/v1/applications/{early}/dispatch",
        json={"carrier": "EMS", "tracking_number": "EA000000000CN"},
        headers=CLERK,
    )
    assert too_early.status_code == 409

    application_id, number = await issue_card(intake, issuance, body)
    shown = await view(intake, application_id)
    assert shown["collection"] == POSTED
    at_counter = await intake.client.post(
        f"/api/v1/applications/{application_id}/collect", headers=CLERK
    )
    assert at_counter.status_code == 409

    async with TopicTap(intake.settings, topics.APPLICATIONS) as tap:
        dispatched = await intake.client.post(
            f"/api/v1/applications/{application_id}/dispatch",
            json={"carrier": "EMS", "tracking_number": "EA123456789CN"},
            headers=CLERK,
        )
        assert dispatched.status_code == 200, dispatched.text
        assert dispatched.json()["status"] == "dispatched"
        assert dispatched.json()["dispatch"]["tracking_number"] == "EA123456789CN"
        event = await tap.wait_for(
            lambda e: e.subject == application_id and e.type == "permits.application.dispatched"
        )
        assert (event.data.carrier, event.data.tracking_number) == ("EMS", "EA123456789CN")
        assert event.data.card_number == number

        twice = await intake.client.post(
            f"/api/v1/applications/{application_id}/dispatch",
            json={"carrier": "EMS", "tracking_number": "EA123456789CN"},
            headers=CLERK,
        )
        assert twice.status_code == 409

        status_page = await intake.client.get(
            f"/api/v1/applications/{application_id}/status",
            params={"travel_permit_number": body["applicant"]["travel_permit_number"]},
        )
        page = status_page.json()
        assert page["collection_method"] == "post"
        assert page["tracking"] == {"carrier": "EMS", "tracking_number": "EA123456789CN"}
        assert POSTED["address"] not in status_page.text

        delivered = await intake.client.post(
            f"/api/v1/applications/{application_id}/collect", headers=CLERK
        )
        assert delivered.status_code == 200, delivered.text
        assert delivered.json()["status"] == "collected"
        collected = await tap.wait_for(
            lambda e: e.subject == application_id and e.type == "permits.application.collected"
        )
        assert collected.data.method == "post"
    assert [h["status"] for h in delivered.json()["history"]][-3:] == [
        "ready",
        "dispatched",
        "collected",
    ]


async def test_a_card_collected_at_the_counter_is_never_dispatched(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    application_id, _ = await issue_card(intake, issuance, application_body())
    refused = await intake.client.post(
        f"/api/v1/applications/{application_id}/dispatch",
        json={"carrier": "EMS", "tracking_number": "EA1"},
        headers=CLERK,
    )
    assert refused.status_code == 409


async def test_an_extension_moves_the_due_date_up_to_ten_working_days(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    application_id = await submit(intake, application_body())
    before = await view(intake, application_id)
    assert before["extension"] is None
    assert before["calendar"]["version"]
    calendar = intake.app.state.runtime.calendar.calendar
    due = date.fromisoformat(before["due_date"])

    assert (await extend(intake, application_id, 4, **CLERK)).status_code == 403
    async with TopicTap(intake.settings, topics.APPLICATIONS) as tap:
        granted = await extend(intake, application_id, 4)
        assert granted.status_code == 200, granted.text
        shown = granted.json()
        moved = date.fromisoformat(shown["due_date"])
        assert calendar.working_days_between(due, moved) == 4
        assert shown["extension"]["working_days"] == 4
        assert shown["extension"]["reason"].startswith("交通不便")
        event = await tap.wait_for(
            lambda e: (
                e.subject == application_id and e.type == "permits.application.extension_granted"
            )
        )
        assert (event.data.working_days, event.data.total_working_days) == (4, 4)

    too_long = await extend(intake, application_id, 7)
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "extension_too_long"
    rest = await extend(intake, application_id, 6)
    assert rest.status_code == 200, rest.text
    assert rest.json()["extension"]["working_days"] == 10
    assert calendar.working_days_between(due, date.fromisoformat(rest.json()["due_date"])) == 10
    assert (await extend(intake, application_id, 1)).json()["code"] == "extension_too_long"

    # Issuance confirms; a warning of the old date no longer stands.
    common = {"application_id": application_id, "acceptance_point": "LIXIA"}
    new_due = date.fromisoformat(rest.json()["due_date"])
    await publish(issuance, SlaAtRisk(**common, due_date=due, working_days_left=3))
    await eventually(lambda: _sla_is(intake, application_id, "at_risk"))
    await publish(
        issuance,
        SlaExtended(
            **common,
            due_date=new_due,
            accepted_on=date.fromisoformat(before["accepted_on"]),
            old_due_date=due,
            new_due_date=new_due,
            working_days=6,
            total_working_days=10,
            reason="交通不便",
            provisional=False,
            calendar_version="abcdef012345",
            official_years=[new_due.year],
        ),
    )
    await eventually(lambda: _sla_is(intake, application_id, "on_track"))
    assert (await view(intake, application_id))["calendar"]["version"] == "abcdef012345"


async def test_no_extension_once_the_card_is_ready(
    intake: RunningIntake, issuance: EventPublisher
) -> None:
    application_id, _ = await issue_card(intake, issuance, application_body())
    late = await extend(intake, application_id, 2)
    assert late.status_code == 409
    assert late.json()["code"] == "extension_too_late"
    assert (await extend(intake, "no-such-application", 2)).status_code == 404


async def test_loading_the_same_arrangement_twice_publishes_once(intake: RunningIntake) -> None:
    year = 2091
    arrangement = {
        "holidays": ["2091-01-01", f"2091-03-{random.randrange(1, 29):02d}"],
        "workdays": [f"2091-09-{random.randrange(1, 29):02d}"],
    }
    if arrangement["workdays"][0][5:] == arrangement["holidays"][1][5:]:
        arrangement["workdays"] = []
    async with TopicTap(intake.settings, topics.CALENDAR) as tap:
        first = await intake.client.put(f"/api/v1/calendar/{year}", json=arrangement, headers=OPS)
        assert first.status_code == 200, first.text
        second = await intake.client.put(f"/api/v1/calendar/{year}", json=arrangement, headers=OPS)
        assert second.status_code == 200, second.text
        await tap.collect(2.0)
    loads = [e for e in tap.events if e.subject == str(year) and e.data.holidays]
    mine = [e for e in loads if [d.isoformat() for d in e.data.holidays] == arrangement["holidays"]]
    assert len(mine) == 1


async def _sla_is(intake: RunningIntake, application_id: str, standing: str) -> bool:
    return bool((await view(intake, application_id))["sla"] == standing)
