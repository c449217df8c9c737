"""Status views kept current from `permits.applications.v1`, `permits.sla.v1` and
`permits.cards.v1`, a consumed batch at a time.

What an event adds to an application's view is appended as a step, all of a batch's steps in one
command; the view is folded from them when read (`permits_intake.domain.progress`). Writes in
place are the exception: a closed application releases its person, and a card event changes
that card's view. Every
handler is safe to run twice: a step is keyed so that a repeated event is the same step, card
views only follow the latest issue; the consumer also deduplicates on event id the events that
write in place (`needs_claim`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from permits_common.events.envelope import Event
from permits_common.events.models import (
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
)
from permits_common.ordering import handle_by_subject
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.cards import CardView, apply_card_event
from permits_intake.domain.progress import Step, closes_application, status_of, steps_of

_CARD_EVENTS = (CardIssued, CardReportedLost, CardRevoked, CardExpired, CardSuperseded)


class StatusViews:
    """Applies consumed events to the application and card views."""

    def __init__(self, store: IntakeStore) -> None:
        self._store = store

    async def handle_batch(self, events: Sequence[Event[Any]]) -> None:
        """A batch of one partition, in order: its steps appended in one command, then the
        writes in place, one subject after the other and several subjects at once."""
        steps: list[tuple[str, Step]] = []
        for event in events:
            application_id = _application_of(event)
            if application_id is not None:
                added = steps_of(event.id, event.time, event.data)
                steps.extend((application_id, step) for step in added)
        await self._store.append_steps(steps)
        in_place = [e for e in events if _changes_in_place(e)]
        issued = _issued_only(in_place)
        await self._store.save_issued_cards(list(issued.values()))
        await handle_by_subject(
            [
                e
                for e in in_place
                if not (isinstance(e.data, CardIssued) and e.data.card_number in issued)
            ],
            self._in_place,
        )

    async def _in_place(self, event: Event[Any]) -> None:
        data = event.data
        status = status_of(data)
        if status is not None:
            await self._store.release_person(data.application_id)
            return
        current = await self._store.card(data.card_number)
        updated = apply_card_event(current, data)
        if updated is not None:
            await self._store.save_card(
                updated, new_holder=current is None or current.holder != updated.holder
            )


def _issued_only(events: Sequence[Event[Any]]) -> dict[str, CardView]:
    """The views of the card numbers whose only events in the batch are issues (the latest
    issue of each): they replace what is stored without reading it (see
    `IntakeStore.save_issued_cards`); a number with any other event is handled in order."""
    views: dict[str, CardView] = {}
    mixed: set[str] = set()
    for event in events:
        data = event.data
        if not isinstance(data, _CARD_EVENTS):
            continue
        if not isinstance(data, CardIssued):
            mixed.add(data.card_number)
            continue
        view = apply_card_event(views.get(data.card_number), data)
        if view is not None:
            views[data.card_number] = view
    return {number: view for number, view in views.items() if number not in mixed}


def needs_claim(event: Event[Any]) -> bool:
    """Whether the consumer must claim an event before it is handled: one that changes a view
    in place (a card view, a closed application's person). Anything else an event does here is
    a step keyed by its status or by the event, which a repeat leaves as it was, so claiming
    it would only cost the store a document."""
    return _changes_in_place(event)


def _application_of(event: Event[Any]) -> str | None:
    application_id = getattr(event.data, "application_id", None)
    return application_id if isinstance(application_id, str) else None


def _changes_in_place(event: Event[Any]) -> bool:
    """Whether an event needs a write in place: the release of a closed application's
    person, a card view's change."""
    data = event.data
    if isinstance(data, _CARD_EVENTS):
        return True
    status = status_of(data)
    return status is not None and closes_application(status)
