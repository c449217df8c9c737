"""The staff routes behind the console: worklist, overview, calendar years and preview."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from intake_forms import application_body
from intake_harness import CLERK, LIXIA_CLERK, OPS, RunningIntake

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _submit(intake: RunningIntake, point: str) -> dict[str, Any]:
    response = await intake.client.post(
        "/api/v1/applications",
        json=application_body(acceptance_point=point),
        headers={**CLERK, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_worklist_lists_the_points_open_applications(intake: RunningIntake) -> None:
    first = await _submit(intake, "TIANQIAO")
    second = await _submit(intake, "TIANQIAO")
    await _submit(intake, "HUAIYIN")
    response = await intake.client.get(
        "/api/v1/worklist", params={"point": "TIANQIAO", "per_page": 100}, headers=CLERK
    )
    assert response.status_code == 200, response.text
    listed = response.json()
    ids = [item["id"] for item in listed["items"]]
    assert {first["id"], second["id"]} <= set(ids)
    assert all(item["acceptance_point"] == "TIANQIAO" for item in listed["items"])
    row = next(item for item in listed["items"] if item["id"] == first["id"])
    assert row["due_date"] == first["due_date"]
    assert row["sla"] == "on_track"
    assert row["working_days_left"] == 20
    assert "applicant" not in row

    one = await intake.client.get(
        "/api/v1/worklist", params={"point": "TIANQIAO", "per_page": 1, "page": 2}, headers=OPS
    )
    assert one.json()["total"] == listed["total"]
    assert len(one.json()["items"]) == 1


async def test_clerk_of_one_point_sees_only_that_point(intake: RunningIntake) -> None:
    other = await intake.client.get(
        "/api/v1/worklist", params={"point": "HUAIYIN"}, headers=LIXIA_CLERK
    )
    assert other.status_code == 403
    own = await intake.client.get(
        "/api/v1/worklist", params={"point": "LIXIA"}, headers=LIXIA_CLERK
    )
    assert own.status_code == 200
    unknown = await intake.client.get("/api/v1/worklist", params={"point": "NOWHERE"}, headers=OPS)
    assert unknown.status_code == 404


async def test_overview_counts_per_point_for_operators(intake: RunningIntake) -> None:
    submitted = await _submit(intake, "SHIZHONG")
    response = await intake.client.get("/api/v1/overview", headers=OPS)
    assert response.status_code == 200, response.text
    overview = response.json()
    assert len(overview["points"]) == 16
    shizhong = next(point for point in overview["points"] if point["point"] == "SHIZHONG")
    assert shizhong["open"] >= 1
    assert submitted["due_date"] >= overview["nearest"][0]["due_date"]
    assert (await intake.client.get("/api/v1/overview", headers=CLERK)).status_code == 403


async def test_calendar_years_and_a_preview_that_loads_nothing(intake: RunningIntake) -> None:
    await _submit(intake, "LIXIA")
    years = (await intake.client.get("/api/v1/calendar/years", headers=CLERK)).json()["years"]
    today = intake.clock.today()
    this_year = next(year for year in years if year["year"] == today.year)
    assert this_year["open_due_dates"] >= 1
    next_year = today.year + 1
    before = next(year for year in years if year["year"] == next_year)

    preview = await intake.client.post(
        f"/api/v1/calendar/{next_year}/preview",
        json={"holidays": [f"{next_year}-01-01"], "workdays": []},
        headers=OPS,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["year"] == next_year
    assert preview.json()["moved"] == len(preview.json()["applications"])
    again = (await intake.client.get("/api/v1/calendar/years", headers=OPS)).json()["years"]
    assert next(y for y in again if y["year"] == next_year)["loaded"] is before["loaded"]

    invalid = await intake.client.post(
        f"/api/v1/calendar/{next_year}/preview",
        json={"holidays": [f"{next_year - 1}-12-31"]},
        headers=OPS,
    )
    assert invalid.status_code == 422
    assert (
        await intake.client.post(
            f"/api/v1/calendar/{next_year}/preview", json={"holidays": []}, headers=CLERK
        )
    ).status_code == 403


async def test_a_loaded_year_is_listed_as_loaded_and_official(intake: RunningIntake) -> None:
    year = intake.clock.today().year + 3
    loaded = await intake.client.put(
        f"/api/v1/calendar/{year}", json={"holidays": [f"{year}-01-01"]}, headers=OPS
    )
    assert loaded.status_code == 200, loaded.text
    await _submit(intake, "LIXIA")
    years = (await intake.client.get("/api/v1/calendar/years", headers=OPS)).json()["years"]
    listed = next(row for row in years if row["year"] == year)
    assert listed["loaded"] is True
    assert listed["official"] is True
    assert listed["open_due_dates"] == 0
