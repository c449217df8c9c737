"""Events of one subject stay in order; different subjects overlap."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from permits_common.events.envelope import Event, new_event
from permits_common.events.models import SlaScheduled
from permits_common.ordering import group_by_subject, handle_by_subject


def _event(application_id: str, day: int) -> Event[Any]:
    return new_event(
        SlaScheduled(
            application_id=application_id,
            acceptance_point="LIXIA",
            accepted_on=date(2026, 3, day),
            due_date=date(2026, 4, day),
            provisional=False,
        ),
        source="test",
    )


def test_groups_keep_the_order_of_each_subject() -> None:
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2)]
    assert group_by_subject(items, lambda item: item[0]) == [
        [("a", 1), ("a", 2)],
        [("b", 1), ("b", 2)],
        [("c", 1)],
    ]


async def test_subjects_overlap_and_each_subject_stays_in_order() -> None:
    events = [_event(subject, day) for day in (1, 2, 3) for subject in ("A-1", "A-2", "A-3")]
    handled: list[tuple[str, int]] = []
    running = 0
    most_at_once = 0

    async def handle(event: Event[Any]) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.01)
        handled.append((event.subject, event.data.accepted_on.day))
        running -= 1

    await handle_by_subject(events, handle, concurrency=2)
    assert most_at_once == 2
    for subject in ("A-1", "A-2", "A-3"):
        assert [day for s, day in handled if s == subject] == [1, 2, 3]


async def test_an_error_surfaces_after_the_other_subjects_finish() -> None:
    finished: list[str] = []

    async def handle(event: Event[Any]) -> None:
        if event.subject == "A-1":
            raise ValueError("refused")
        await asyncio.sleep(0.01)
        finished.append(event.subject)

    with pytest.raises(ValueError, match="refused"):
        await handle_by_subject([_event("A-1", 1), _event("A-2", 1)], handle)
    assert finished == ["A-2"]
