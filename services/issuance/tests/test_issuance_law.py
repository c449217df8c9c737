"""The issuance worker moving deadlines: an operator's extension, then the year it reaches loaded
(far years stand in for "next year", so the shared broker's other tests keep their calendar)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from issuance_harness import EventWatcher, IssuanceStack, accepted, of_subject
from test_issuance_worker import publish_until, publisher, simulator, watcher

from permits_common.domain.calendar import WorkingDayCalendar, official_arrangement
from permits_common.events.models import ApplicationExtensionGranted, CalendarLoaded
from permits_common.kafka import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["publisher", "simulator", "watcher"]
OPS = {"Authorization": "Bearer dev-ops"}


def grant(application_id: str, days: int, total: int) -> ApplicationExtensionGranted:
    return ApplicationExtensionGranted(
        application_id=application_id,
        acceptance_point="LIXIA",
        working_days=days,
        total_working_days=total,
        reason="交通不便",
        granted_at=datetime.now(UTC),
    )


async def test_an_extension_then_the_year_it_reaches_is_loaded(
    issuance_stack: IssuanceStack,
    publisher: EventPublisher,
    watcher: EventWatcher,
    simulator: httpx.AsyncClient,
) -> None:
    await simulator.post("/api/v1/control", json={"drop_next_callbacks": 20})
    application_id = issuance_stack.application_id()
    accepted_on = date(2094, 12, 1)

    def seen(event_type: str, count: int = 1) -> Any:
        return lambda events: len(of_subject(events, application_id, event_type)) >= count

    await publish_until(
        publisher,
        watcher,
        publisher.event(accepted(application_id, accepted_on=accepted_on)),
        seen("sla.scheduled"),
    )
    scheduled = of_subject(watcher.events, application_id, "sla.scheduled")[0].data
    assert scheduled.provisional_years == [2094]
    assert scheduled.calendar_version

    await publish_until(
        publisher, watcher, publisher.event(grant(application_id, 10, 10)), seen("sla.extended")
    )
    extended = of_subject(watcher.events, application_id, "sla.extended")[0].data
    assert extended.old_due_date == scheduled.due_date
    provisional = WorkingDayCalendar()
    assert provisional.working_days_between(accepted_on, extended.new_due_date) == 30
    assert extended.new_due_date.year == 2095
    assert extended.provisional_years == [2094, 2095]
    assert (extended.working_days, extended.total_working_days) == (10, 10)

    async with httpx.AsyncClient(base_url=issuance_stack.url) as client:
        listed = await client.get("/api/v1/sla/provisional", params={"year": 2095}, headers=OPS)
        assert listed.status_code == 200, listed.text
        mine = [d for d in listed.json()["deadlines"] if d["application_id"] == application_id]
        assert mine[0]["due_date"] == extended.new_due_date.isoformat()
        assert mine[0]["extension_working_days"] == 10
        assert mine[0]["calendar"]["provisional_years"] == [2094, 2095]

    # One more working day is past the legal maximum: refused, nothing published.
    await publisher.publish(publisher.event(grant(application_id, 1, 10)))

    unique_day = date(2095, 6, random.randrange(1, 29))
    holidays = sorted({date(2095, 1, 1), extended.new_due_date, unique_day})
    load = publisher.event(CalendarLoaded(year=2095, holidays=holidays, workdays=[]))
    await publish_until(publisher, watcher, load, seen("sla.rescheduled"))
    moved = of_subject(watcher.events, application_id, "sla.rescheduled")[0].data
    assert moved.old_due_date == extended.new_due_date
    assert moved.new_due_date == moved.due_date
    loaded = provisional.with_year(official_arrangement(2095, holidays, []))
    assert loaded.working_days_between(accepted_on, moved.new_due_date) == 30
    assert moved.new_due_date > extended.new_due_date
    assert moved.calendar_version != extended.calendar_version
    assert moved.official_years == [2095]
    assert moved.provisional_years == [2094]

    # The same arrangement again (another event id): nothing moves, nothing is published.
    again = publisher.event(CalendarLoaded(year=2095, holidays=holidays, workdays=[]))
    await publisher.publish(again)
    with pytest.raises(TimeoutError):
        await watcher.wait_until(seen("sla.rescheduled", 2), within=4.0)
    assert len(of_subject(watcher.events, application_id, "sla.extended")) == 1
    await simulator.post("/api/v1/control", json={"drop_next_callbacks": 0})
