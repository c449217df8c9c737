"""The deadline clock: schedule on acceptance, warn, breach, meet, and reschedule when a year
of the calendar is loaded or corrected.

Each application has one deadline document with precomputed `at_risk_on` and `breach_on`, so a
timer pass asks only for what is due today (indexed on state and those dates), and the years
its dates were counted over (`calendar_years`), so a calendar load finds exactly the deadlines
that depend on the year. Events are published before the state is written and carry derived
ids: a crash or a second worker makes a repeat with the same id, which consumers drop.

A deadline that closes (its card is ready, or its application refused) moves to
`closed_deadlines`, which has no index but `_id`: inserted there first, then deleted from
`deadlines`, so a crash in between leaves it in both and the repeat finishes the move. Only
open deadlines are scanned, and a closing deadline is never rewritten under the open ones'
indexes (eighteen in PostgreSQL: an update there was the largest single statement of the
pipeline, docs/benchmarks.md); a delete only marks the row.

The deadlines started by one batch of acceptances share a `started_together` token, so the
cards of that batch ready in time are moved with one read and one delete led by the token
(`delete_together`), an index lookup in FerretDB, which then picks the batch's few documents
itself (a filter on `_id` alone with `$in` is not sent to PostgreSQL and would read the whole
collection), and one insert of what they became.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.calendar import CalendarStamp
from permits_common.domain.card import SlaState
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import (
    SlaAtRisk,
    SlaBreached,
    SlaMet,
    SlaRescheduled,
    SlaScheduled,
)
from permits_common.kafka import EventPublisher
from permits_common.mongo import Document, insert_new
from permits_issuance.adapters.store import (
    STARTED_TOGETHER,
    IssuanceStore,
    day_of,
    delete_together,
    iso,
    token_of,
)
from permits_issuance.domain.deadline import (
    DeadlineSchedule,
    met_when_ready,
    schedule,
    state_on,
    working_days_left,
)
from permits_issuance.metrics import ISSUE_WORKING_DAYS, SLA_BREACHES, SLA_OPEN
from permits_issuance.service.calendar import CalendarHolder

CLOSED = "closed"
"""Internal state of a deadline whose application was refused: no card is due."""
_REFUSED = {"state": CLOSED, "open": False}
"""What a deadline closed by a refusal stores."""
_SCAN_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ReadyCard:
    """A card the centre confirmed, for its deadline: `scheduled` is the deadline as it was
    at approval (carried by the production order), None when the order does not carry it."""

    application_id: str
    ready_on: date
    first_time: bool
    scheduled: Document | None = None


class DeadlineService:
    """Owns the deadline documents and the `sla.*` events."""

    def __init__(
        self,
        store: IssuanceStore,
        publisher: EventPublisher,
        calendar: CalendarHolder,
        clock: Clock,
        at_risk_working_days: int,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._calendar = calendar
        self._clock = clock
        self._at_risk_days = at_risk_working_days

    async def start_clock(
        self, application_id: str, point: str, accepted_on: date, *, redelivered: bool = True
    ) -> Document:
        """Schedule the deadline of a newly accepted application (idempotent); returns the
        deadline as stored. A redelivered acceptance whose deadline has closed since gets the
        closed one (its clock is not started again)."""
        closed = None
        if redelivered:
            closed = await self._store.closed_deadlines.find_one({"_id": application_id})
        doc = closed or await self._store.insert_first(
            self._store.deadlines,
            self.new_deadline(application_id, point, accepted_on, uuid.uuid4().hex),
        )
        await self._publisher.publish(self.scheduled_event(doc))
        return doc

    async def _move_out(self, closed: Sequence[Document]) -> None:
        """Move deadlines, as given (their closing fields set), to the closed ones: one insert,
        then the open ones deleted with one command per batch token (`delete_together`)."""
        if not closed:
            return
        await insert_new(self._store.closed_deadlines, list(closed))
        await delete_together(
            self._store.deadlines, [(token_of(doc), {"_id": doc["_id"]}) for doc in closed]
        )

    async def _close_met_together(self, together: str, ready_on: date, ids: Sequence[str]) -> None:
        """Move the named deadlines of one batch token, met on `ready_on`, to the closed ones
        (those moved already are no longer found)."""
        named = set(ids)
        await self._move_out(
            [
                {**doc, **met_fields(ready_on)}
                async for doc in self._store.deadlines.find({STARTED_TOGETHER: together})
                if doc["_id"] in named
            ]
        )

    async def start_clocks(self, starts: Sequence[tuple[str, str, date]]) -> dict[str, Document]:
        """`start_clock` for a batch of (application id, point, accepted on) with one insert,
        without publishing: the deadlines as stored, by application id. The caller publishes
        `scheduled_event` of each (a repeat is the same event, with the same id)."""
        together = uuid.uuid4().hex
        stored = await self._store.insert_all_first(
            self._store.deadlines, [self.new_deadline(*start, together) for start in starts]
        )
        return {str(key): doc for key, doc in stored.items()}

    def new_deadline(
        self, application_id: str, point: str, accepted_on: date, started_together: str
    ) -> Document:
        """The deadline document of an application accepted today, started with the others
        of its batch (`started_together`, a token of the batch)."""
        planned = schedule(self._calendar.current, accepted_on, self._at_risk_days)
        return {
            "_id": application_id,
            "point": point,
            "accepted_on": iso(accepted_on),
            **schedule_fields(planned),
            "state": SlaState.ON_TRACK.value,
            "open": True,
            STARTED_TOGETHER: started_together,
        }

    def scheduled_event(self, doc: Document) -> Event[Any]:
        """`sla.scheduled` of a stored deadline (its id derived from the application's)."""
        stored = schedule_of(doc)
        application_id = str(doc["_id"])
        return self._publisher.event(
            SlaScheduled(
                application_id=application_id,
                acceptance_point=str(doc["point"]),
                due_date=stored.due_date,
                accepted_on=stored.accepted_on,
                provisional=stored.provisional,
                **calendar_fields(stored.calendar),
            ),
            event_id=derived_event_id(application_id, "sla.scheduled"),
        )

    async def stop_clock(self, application_id: str) -> None:
        """The application was refused: nothing is due any more."""
        doc = await self._store.deadlines.find_one({"_id": application_id})
        if doc is not None:
            await self.stop_clocks([doc])

    async def stop_clocks(self, deadlines: Sequence[Document]) -> None:
        """`stop_clock` for deadlines just read or stored (a batch's refusals), together."""
        await self._move_out([{**doc, **_REFUSED} for doc in deadlines])

    async def cards_ready(self, cards: Sequence[ReadyCard]) -> None:
        """`card_ready` for several cards (of different applications): those ready in time by
        a final date known at approval (the usual case) publish their `sla.met` with one wait
        for the broker and are closed with one update per batch of acceptances they were
        started in; the others as `card_ready`. Each card's event goes out before its
        deadline is written, and a repeat writes the same fields again."""
        in_time = {
            card.application_id: scheduled
            for card in cards
            if (scheduled := self._met_as_scheduled(card)) is not None
        }
        if in_time:
            await self._publisher.publish_all(
                [
                    self._met_event(in_time[card.application_id], card.ready_on)
                    for card in cards
                    if card.application_id in in_time
                ]
            )
            closing: dict[tuple[str, date], list[str]] = defaultdict(list)
            for card in cards:
                if (scheduled := in_time.get(card.application_id)) is not None:
                    self._observe_issue(scheduled, card.ready_on, card.first_time)
                    closing[(str(scheduled[STARTED_TOGETHER]), card.ready_on)].append(
                        card.application_id
                    )
            await asyncio.gather(
                *(
                    self._close_met_together(together, ready_on, ids)
                    for (together, ready_on), ids in closing.items()
                )
            )
        await asyncio.gather(
            *(
                self.card_ready(card.application_id, card.ready_on, first_time=card.first_time)
                for card in cards
                if card.application_id not in in_time
            )
        )

    def _met_as_scheduled(self, card: ReadyCard) -> Document | None:
        """The deadline as scheduled when the card is ready in time by a final date known at
        approval, in a deadline started with a batch token (closed without reading it again);
        otherwise None."""
        scheduled = card.scheduled
        if (
            scheduled is not None
            and STARTED_TOGETHER in scheduled
            and not scheduled["provisional"]
            and met_when_ready(schedule_of(scheduled), card.ready_on)
        ):
            return scheduled
        return None

    def _observe_issue(self, doc: Document, ready_on: date, first_time: bool) -> None:
        if first_time:
            ISSUE_WORKING_DAYS.observe(
                self._calendar.current.working_days_between(day_of(doc["accepted_on"]), ready_on)
            )

    def _met_event(self, doc: Document, ready_on: date) -> Event[Any]:
        """`sla.met` of a deadline met on `ready_on` (its id derived from the application's)."""
        planned = schedule_of(doc)
        application_id = str(doc["_id"])
        return self._publisher.event(
            SlaMet(
                application_id=application_id,
                acceptance_point=str(doc["point"]),
                due_date=planned.due_date,
                ready_on=ready_on,
                working_days_taken=self._calendar.current.working_days_between(
                    planned.accepted_on, ready_on
                ),
            ),
            event_id=derived_event_id(application_id, "sla.met"),
        )

    async def card_ready(self, application_id: str, ready_on: date, *, first_time: bool) -> None:
        """Meet the deadline, or confirm the breach when the card came late, as stored now (a
        card that `cards_ready` could not close by its batch: late, provisional, or ordered
        without the deadline)."""
        doc = await self._store.deadlines.find_one({"_id": application_id})
        if doc is None:  # closed already (a repeat), or never started
            return
        planned = schedule_of(doc)
        self._observe_issue(doc, ready_on, first_time)
        if met_when_ready(planned, ready_on):
            await self._publisher.publish(self._met_event(doc, ready_on))
            await self._move_out([{**doc, **met_fields(ready_on)}])
            return
        if doc["state"] != SlaState.BREACHED.value:
            await self._breach(doc, planned)
        await self._move_out(
            [{**doc, "state": SlaState.BREACHED.value, "open": False, "ready_on": iso(ready_on)}]
        )

    async def timer_pass(self) -> int:
        """Raise what is due today: warnings first, then breaches. Returns events published."""
        today = self._clock.today()
        published = 0
        at_risk = self._store.deadlines.find(
            {"state": SlaState.ON_TRACK.value, "at_risk_on": {"$lte": iso(today)}}
        ).limit(_SCAN_BATCH)
        async for doc in at_risk:
            planned = schedule_of(doc)
            if state_on(planned, today) is SlaState.AT_RISK:
                await self._warn(doc, planned, today)
                published += 1
        breached = self._store.deadlines.find(
            {
                "state": {"$in": [SlaState.ON_TRACK.value, SlaState.AT_RISK.value]},
                "breach_on": {"$lte": iso(today)},
            }
        ).limit(_SCAN_BATCH)
        async for doc in breached:
            await self._breach(doc, schedule_of(doc))
            published += 1
        await self.refresh_gauge()
        return published

    async def _warn(self, doc: Document, planned: DeadlineSchedule, today: date) -> None:
        application_id = str(doc["_id"])
        left = working_days_left(self._calendar.current, today, planned.due_date)
        await self._publisher.publish(
            self._publisher.event(
                SlaAtRisk(
                    application_id=application_id,
                    acceptance_point=str(doc["point"]),
                    due_date=planned.due_date,
                    working_days_left=max(left, 0),
                ),
                event_id=derived_event_id(application_id, "sla.at_risk", iso(planned.due_date)),
            )
        )
        await self._store.deadlines.update_one(
            {"_id": application_id, "state": SlaState.ON_TRACK.value},
            {"$set": {"state": SlaState.AT_RISK.value}},
        )

    async def _breach(self, doc: Document, planned: DeadlineSchedule) -> None:
        application_id = str(doc["_id"])
        point = str(doc["point"])
        await self._publisher.publish(
            self._publisher.event(
                SlaBreached(
                    application_id=application_id,
                    acceptance_point=point,
                    due_date=planned.due_date,
                ),
                event_id=breach_event_id(application_id, planned),
            )
        )
        result = await self._store.deadlines.update_one(
            {"_id": application_id, "state": {"$ne": SlaState.BREACHED.value}},
            {"$set": {"state": SlaState.BREACHED.value}},
        )
        if result.modified_count:
            SLA_BREACHES.labels(point).inc()

    async def reschedule_year(self, year: int) -> int:
        """Recompute every open deadline counted over `year` with the current calendar; publish
        each one whose date or calendar changed (a load that changes nothing publishes nothing).
        Deadlines stored before the calendar was recorded are recomputed once as well."""
        today = self._clock.today()
        published = 0
        cursor = self._store.deadlines.find(
            {
                "open": True,
                "$or": [{"calendar_years": year}, {"calendar_version": {"$exists": False}}],
            }
        )
        async for doc in cursor:
            before = schedule_of(doc)
            if before.calendar is not None and not before.depends_on(year):
                continue
            after = schedule(
                self._calendar.current,
                before.accepted_on,
                self._at_risk_days,
                before.extension_days,
            )
            if after == before:
                continue
            await self._publish_rescheduled(str(doc["_id"]), str(doc["point"]), before, after)
            await self._store.deadlines.update_one(
                {"_id": doc["_id"]}, {"$set": moved_fields(doc, after, today)}
            )
            published += 1
        return published

    async def _publish_rescheduled(
        self, application_id: str, point: str, before: DeadlineSchedule, after: DeadlineSchedule
    ) -> None:
        version = after.calendar.version if after.calendar else ""
        await self._publisher.publish(
            self._publisher.event(
                SlaRescheduled(
                    application_id=application_id,
                    acceptance_point=point,
                    due_date=after.due_date,
                    accepted_on=after.accepted_on,
                    previous_due_date=before.due_date,
                    old_due_date=before.due_date,
                    new_due_date=after.due_date,
                    provisional=after.provisional,
                    **calendar_fields(after.calendar),
                ),
                event_id=derived_event_id(
                    application_id,
                    "sla.rescheduled",
                    iso(before.due_date),
                    iso(after.due_date),
                    after.provisional,
                    version,
                ),
            )
        )

    async def provisional_deadlines(self, year: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Open deadlines counted over `year` while it is still provisional: what will move
        when its official arrangement is loaded (no personal data)."""
        cursor = (
            self._store.deadlines.find({"open": True, "provisional_years": year})
            .sort("due_date", 1)
            .limit(limit)
        )
        return [
            {
                "application_id": str(doc["_id"]),
                "acceptance_point": str(doc["point"]),
                "accepted_on": str(doc["accepted_on"]),
                "due_date": str(doc["due_date"]),
                "extension_working_days": int(doc.get("extension_days", 0)),
                "calendar": _calendar_of(schedule_of(doc)),
                "state": str(doc["state"]),
            }
            async for doc in cursor
        ]

    async def refresh_gauge(self) -> None:
        """Recount open deadlines by state and point for `permits_sla_open`."""
        counts = await self.open_counts()
        SLA_OPEN.clear()
        for (state, point), count in counts.items():
            SLA_OPEN.labels(state, point).set(count)

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Open applications by (state, point), counted in the store."""
        cursor = await self._store.deadlines.aggregate(
            [
                {"$match": {"open": True}},
                {"$group": {"_id": {"state": "$state", "point": "$point"}, "n": {"$sum": 1}}},
            ]
        )
        return {(row["_id"]["state"], row["_id"]["point"]): int(row["n"]) async for row in cursor}

    async def summary(self, nearest: int = 20) -> dict[str, Any]:
        """Open applications by state and point, and the nearest deadlines (no personal data)."""
        counts = await self.open_counts()
        by_state: dict[str, int] = {}
        by_point: dict[str, dict[str, int]] = {}
        for (state, point), count in sorted(counts.items()):
            by_state[state] = by_state.get(state, 0) + count
            by_point.setdefault(point, {})[state] = count
        cursor = self._store.deadlines.find({"open": True}).sort("due_date", 1).limit(nearest)
        return {
            "today": iso(self._clock.today()),
            "open": sum(counts.values()),
            "by_state": by_state,
            "by_point": by_point,
            "nearest_deadlines": [
                {
                    "application_id": str(doc["_id"]),
                    "acceptance_point": str(doc["point"]),
                    "due_date": str(doc["due_date"]),
                    "provisional": bool(doc["provisional"]),
                    "state": str(doc["state"]),
                    "extension_working_days": int(doc.get("extension_days", 0)),
                }
                async for doc in cursor
            ],
        }


def schedule_fields(planned: DeadlineSchedule) -> dict[str, Any]:
    """A schedule as stored in its deadline document."""
    stamp = planned.calendar
    return {
        "due_date": iso(planned.due_date),
        "provisional": planned.provisional,
        "at_risk_on": iso(planned.at_risk_on),
        "breach_on": iso(planned.breach_on),
        "extension_days": planned.extension_days,
        **(
            {
                "calendar_version": stamp.version,
                "calendar_years": list(stamp.years),
                "official_years": list(stamp.official_years),
                "provisional_years": list(stamp.provisional_years),
            }
            if stamp is not None
            else {}
        ),
    }


def met_fields(ready_on: date) -> dict[str, Any]:
    """What a deadline met on `ready_on` stores."""
    return {"state": SlaState.MET.value, "open": False, "ready_on": iso(ready_on)}


def schedule_of(doc: Document) -> DeadlineSchedule:
    """A stored deadline document's schedule."""
    version = doc.get("calendar_version")
    return DeadlineSchedule(
        accepted_on=day_of(doc["accepted_on"]),
        due_date=day_of(doc["due_date"]),
        provisional=bool(doc["provisional"]),
        at_risk_on=day_of(doc["at_risk_on"]),
        breach_on=day_of(doc["breach_on"]),
        extension_days=int(doc.get("extension_days", 0)),
        calendar=CalendarStamp(
            version=str(version),
            official_years=tuple(int(y) for y in doc.get("official_years", [])),
            provisional_years=tuple(int(y) for y in doc.get("provisional_years", [])),
        )
        if version is not None
        else None,
    )


def moved_fields(doc: Document, after: DeadlineSchedule, today: date) -> dict[str, Any]:
    """What to write when a deadline moves: the new schedule, and the standing it has on the
    new date (a warning or breach of the old date no longer stands; the timer raises them
    again for the new date when they fall due)."""
    fields = schedule_fields(after)
    if doc["state"] in (SlaState.AT_RISK.value, SlaState.BREACHED.value) and state_on(
        after, today
    ) is not SlaState(doc["state"]):
        fields["state"] = SlaState.ON_TRACK.value
    return fields


def calendar_fields(stamp: CalendarStamp | None) -> dict[str, Any]:
    """The calendar behind a date, as the `sla.*` events carry it."""
    if stamp is None:
        return {}
    return {
        "calendar_version": stamp.version,
        "official_years": list(stamp.official_years),
        "provisional_years": list(stamp.provisional_years),
    }


def _calendar_of(planned: DeadlineSchedule) -> dict[str, object] | None:
    return planned.calendar.as_document() if planned.calendar is not None else None


def breach_event_id(application_id: str, planned: DeadlineSchedule) -> str:
    """One breach per due date: a date moved by an extension or a calendar load can be
    breached again, a repeat for the same date is one fact."""
    return derived_event_id(application_id, "sla.breached", iso(planned.due_date))
