"""The intake API through the real app, on the real Kafka and store."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from intake_forms import application_body
from intake_harness import AGENCY, CLERK, LIXIA_CLERK, OPS, RunningIntake, TopicTap

from permits_common.domain import permit_number
from permits_common.domain.regions import Region
from permits_common.events import topics
from permits_common.events.models import ApplicationAccepted

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def submit(
    intake: RunningIntake, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return await intake.client.post(
        "/api/v1/applications", json=body, headers={**CLERK, **key(), **(headers or {})}
    )


async def test_acceptance_points_are_public(intake: RunningIntake) -> None:
    response = await intake.client.get("/api/v1/acceptance-points")
    assert response.status_code == 200
    points = response.json()
    assert len(points) == 16
    assert points[0] == {
        "code": "LIXIA",
        "name": "历下分局科院路派出所",
        "district": "历下区",
        "address": "历下区科院路6号",
        "phone": "0531-82922110",
        "issuing_authority": "济南市公安局历下分局",
    }
    stored = await intake.app.state.runtime.store.points.count_documents({})
    assert stored == 16


async def test_accepted_application_is_published_once(intake: RunningIntake) -> None:
    body = application_body()
    async with TopicTap(intake.settings, topics.APPLICATIONS) as tap:
        response = await submit(intake, body)
        assert response.status_code == 201, response.text
        answer = response.json()
        today = intake.clock.today()
        due = intake.app.state.runtime.calendar.due_date(today)
        assert answer == {
            "id": answer["id"],
            "status": "accepted",
            "accepted_on": today.isoformat(),
            "due_date": due.due_date.isoformat(),
            "due_date_provisional": due.provisional,
        }
        assert response.headers["location"] == f"/api/v1/applications/{answer['id']}"
        event = await tap.wait_for(lambda e: e.subject == answer["id"])
    assert event.type == "permits.application.accepted"
    assert event.source == "intake"
    data = event.data
    assert isinstance(data, ApplicationAccepted)
    assert data.applicant.travel_permit_number == body["applicant"]["travel_permit_number"]
    assert data.due_date.isoformat() == answer["due_date"]
    assert data.accepted_on == today
    assert data.bases[0].evidence == "labour contract 2025-0117"

    view = await intake.client.get(f"/api/v1/applications/{answer['id']}", headers=OPS)
    assert view.status_code == 200
    shown = view.json()
    assert shown["status"] == "accepted"
    assert shown["sla"] == "on_track"
    assert shown["card"] is None
    assert shown["rejection"] is None
    assert [h["status"] for h in shown["history"]] == ["accepted"]


async def test_idempotent_retry_returns_the_same_answer_and_publishes_nothing_new(
    intake: RunningIntake,
) -> None:
    body = application_body()
    headers = {**CLERK, "Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    async with TopicTap(intake.settings, topics.APPLICATIONS) as tap:
        first = await intake.client.post("/api/v1/applications", json=body, headers=headers)
        second = await intake.client.post("/api/v1/applications", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        application_id = first.json()["id"]
        await tap.wait_for(lambda e: e.subject == application_id)
        await tap.collect(1.5)
        assert len(tap.matching(lambda e: e.subject == application_id)) == 1

    changed = {**body, "bases": [{"type": "study", "evidence": "enrolment 2025"}]}
    reused = await intake.client.post("/api/v1/applications", json=changed, headers=headers)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_refusal_is_replayed_for_the_same_key(intake: RunningIntake) -> None:
    body = application_body(bases=[])
    headers = {**CLERK, "Idempotency-Key": uuid.uuid4().hex}
    first = await intake.client.post("/api/v1/applications", json=body, headers=headers)
    second = await intake.client.post("/api/v1/applications", json=body, headers=headers)
    assert first.status_code == second.status_code == 422
    assert first.json() == second.json()
    assert first.json()["code"] == "no_basis"


async def test_idempotency_key_is_required(intake: RunningIntake) -> None:
    response = await intake.client.post(
        "/api/v1/applications", json=application_body(), headers=CLERK
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert problem["errors"][0]["code"] == "idempotency_key_required"


FUTURE = "2099-01-01"
UNKNOWN_CARD = permit_number.generate(Region.HK, date(1900, 1, 1), 7).value


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"residence__since": FUTURE}, "residence_too_short", "residence.since"),
        ({"residence__district": "朝阳区"}, "residence_not_in_jinan", "residence.district"),
        ({"bases": []}, "no_basis", "bases"),
        (
            {"bases": [{"type": "study", "evidence": ""}]},
            "basis_evidence_missing",
            "bases.0.evidence",
        ),
        ({"applicant__birth_date": "2020-01-01"}, "guardian_required", "guardian"),
        ({"applicant__birth_date": "2099-01-01"}, "birth_date_in_future", "applicant.birth_date"),
        (
            {"applicant__travel_permit_number": "H123"},
            "permit_number_invalid",
            "applicant.travel_permit_number",
        ),
        (
            {"applicant__travel_permit_number": "M12345678"},
            "region_mismatch",
            "applicant.travel_permit_number",
        ),
        (
            {"biometrics": {"photo_ref": "ph-1"}},
            "biometrics_missing",
            "biometrics.fingerprints_ref",
        ),
        (
            {"biometrics": {"photo_ref": "ph-1", "fingerprint_waiver": "tired"}},
            "fingerprint_waiver_invalid",
            "biometrics.fingerprint_waiver",
        ),
        ({"acceptance_point": "ATLANTIS"}, "unknown_acceptance_point", "acceptance_point"),
        ({"kind": "renewal", "renewal_reason": "damaged"}, "card_number_required", "card_number"),
        (
            {"kind": "reissue", "card_number": "810000199001010012"},
            "card_number_invalid",
            "card_number",
        ),
        (
            {"kind": "renewal", "card_number": UNKNOWN_CARD},
            "renewal_reason_required",
            "renewal_reason",
        ),
        ({"kind": "reissue", "card_number": UNKNOWN_CARD}, "card_not_found", "card_number"),
    ],
)
async def test_every_refusal_code(
    intake: RunningIntake, overrides: dict[str, Any], code: str, field: str
) -> None:
    body = application_body(**overrides)
    response = await submit(intake, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in problem["errors"]
    ]
    metrics = (await intake.client.get("/metrics")).text
    assert f'code="{code}"' in metrics


async def test_second_open_application_is_a_conflict(intake: RunningIntake) -> None:
    body = application_body()
    assert (await submit(intake, body)).status_code == 201
    again = application_body(
        applicant__travel_permit_number=body["applicant"]["travel_permit_number"] + "01"
    )
    response = await submit(intake, again)
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_open_application"
    metrics = (await intake.client.get("/metrics")).text
    assert (
        'permits_applications_total{code="duplicate_open_application",kind="first",outcome="refused",point="LIXIA"}'
        in metrics
    )


async def test_schema_errors_are_problem_details(intake: RunningIntake) -> None:
    response = await submit(intake, {"kind": "first"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert "applicant" in {e["field"] for e in problem["errors"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("POST", "/api/v1/applications", application_body(), "clerk"),
        ("GET", "/api/v1/applications/x", None, "clerk,ops"),
        ("POST", "/api/v1/applications/x/collect", None, "clerk"),
        ("POST", "/api/v1/cards/810000199001010011/report-lost", None, "clerk"),
        ("POST", "/api/v1/cards/810000199001010011/revoke", {"reason": "fraud"}, "ops"),
        ("GET", "/api/v1/calendar/due-date?accepted_on=2026-03-02", None, "clerk,ops"),
        ("PUT", "/api/v1/calendar/2027", {"holidays": [], "workdays": []}, "ops"),
        ("PUT", "/api/v1/dev/clock", {"offset_days": 0}, "ops"),
    ],
)
async def test_authorization_matrix(
    intake: RunningIntake, method: str, path: str, body: Any, allowed: str
) -> None:
    anonymous = await intake.client.request(method, path, json=body, headers=key())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    unknown = await intake.client.request(
        method, path, json=body, headers={"Authorization": "Bearer nope", **key()}
    )
    assert unknown.status_code == 401
    for role, headers in (("clerk", CLERK), ("ops", OPS), ("agency", AGENCY)):
        response = await intake.client.request(
            method, path, json=body, headers={**headers, **key()}
        )
        if role in allowed.split(","):
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["code"] == "forbidden"


async def test_clerk_bound_to_a_point_submits_only_there(intake: RunningIntake) -> None:
    other = await submit(intake, application_body(acceptance_point="SHIZHONG"), LIXIA_CLERK)
    assert other.status_code == 403
    own = await submit(intake, application_body(acceptance_point="LIXIA"), LIXIA_CLERK)
    assert own.status_code == 201


async def test_unknown_application_is_404(intake: RunningIntake) -> None:
    response = await intake.client.get("/api/v1/applications/nope", headers=CLERK)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    status = await intake.client.get(
        "/api/v1/applications/nope/status", params={"travel_permit_number": "H12345678"}
    )
    assert status.status_code == 404


async def test_applicant_status_needs_the_right_travel_permit(intake: RunningIntake) -> None:
    body = application_body(acceptance_point="HUAIYIN")
    application_id = (await submit(intake, body)).json()["id"]
    path = f"/api/v1/applications/{application_id}/status"
    permit = body["applicant"]["travel_permit_number"]
    wrong = await intake.client.get(path, params={"travel_permit_number": "H00000001"})
    assert wrong.status_code == 404
    missing = await intake.client.get(path)
    assert missing.status_code == 422
    right = await intake.client.get(path, params={"travel_permit_number": permit})
    assert right.status_code == 200
    shown = right.json()
    assert set(shown) == {
        "id",
        "status",
        "due_date",
        "sla",
        "collect_at",
        "collection_method",
        "tracking",
    }
    assert shown["status"] == "accepted"
    assert shown["collect_at"] == {
        "name": "槐荫分局道德街派出所",
        "address": "槐荫区道德新路3号",
        "phone": "0531-82666110",
    }
    assert permit not in right.text


async def test_health_ready_metrics(intake: RunningIntake) -> None:
    assert (await intake.client.get("/healthz")).json() == {"status": "ok"}
    ready = await intake.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "kafka": "ok"}
    metrics = await intake.client.get("/metrics")
    assert "permits_applications_total" in metrics.text
    assert "permits_http_request_seconds" in metrics.text


async def test_openapi_documents_the_contract(intake: RunningIntake) -> None:
    spec = (await intake.client.get("/openapi.json")).json()
    post = spec["paths"]["/api/v1/applications"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in post["parameters"])
    assert "201" in post["responses"]
    form = spec["components"]["schemas"]["ApplicationForm"]
    assert form["examples"][0]["acceptance_point"] == "LIXIA"
    assert "/api/v1/dev/clock" in spec["paths"]
