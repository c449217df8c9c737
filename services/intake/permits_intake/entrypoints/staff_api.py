"""Routes behind the staff pages of the console: worklist, overview, calendar years, preview.

`GET /api/v1/worklist` (clerk of the point, or ops), `GET /api/v1/overview` (ops),
`GET /api/v1/calendar/years` (clerk, ops), `POST /api/v1/calendar/{year}/preview` (ops) and
`GET /api/v1/dead-letters` (ops). They only read; the use cases raise domain errors, mapped to
problems here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from permits_common.domain.card import ApplicationKind, ApplicationStatus, SlaState
from permits_common.domain.rule_codes import RuleCode
from permits_common.kafka import TRANSIENT_ERRORS
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import NO_CONTROL_CHARACTERS
from permits_common.web.openapi import problem_responses
from permits_common.web.problems import ProblemError
from permits_intake.adapters.dead_letters import read_dead_letters
from permits_intake.domain.overview import OpenApplication, WorklistOrder
from permits_intake.entrypoints.schemas import CalendarIn, invalid_arrangement
from permits_intake.runtime import IntakeRuntime, unavailable
from permits_intake.service.overview import (
    PointNotAllowedError,
    StaffOverview,
    UnknownPointError,
)

MAX_PER_PAGE = 100
NEAREST_DEADLINES = 10
MAX_RECENT_DEAD_LETTERS = 50


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class OpenApplicationOut(_Out):
    """An open application in a list: its progress only, no personal data."""

    id: str
    kind: ApplicationKind
    acceptance_point: str
    status: ApplicationStatus
    accepted_on: date
    due_date: date
    due_date_provisional: bool
    sla: SlaState
    working_days_left: int


class WorklistOut(_Out):
    """One page of a point's open applications."""

    point: str
    items: list[OpenApplicationOut]
    total: int
    page: int
    per_page: int


class PointTallyOut(_Out):
    """Open applications of one point, and how many are at risk or breached."""

    point: str
    open: int
    at_risk: int
    breached: int


class OverviewOut(_Out):
    """Per point tallies and the soonest deadlines of the city."""

    today: date
    points: list[PointTallyOut]
    nearest: list[OpenApplicationOut]


class CalendarYearOut(_Out):
    """A calendar year: official (built in or loaded) or provisional, and how many open
    applications' due dates are counted through it."""

    year: int
    official: bool
    loaded: bool
    open_due_dates: int


class CalendarYearsOut(_Out):
    """The years that matter for the open applications."""

    years: list[CalendarYearOut]


class MovedDueDateOut(_Out):
    """An open application whose due date the arrangement would move."""

    id: str
    due_date: date
    new_due_date: date


class CalendarPreviewOut(_Out):
    """What loading the arrangement would change, without loading it."""

    year: int
    moved: int
    applications: list[MovedDueDateOut]


class DeadLetterOut(_Out):
    """A dead letter by reference: where it came from and who gave up on it; never the
    message or the error text, which may carry personal data."""

    event_id: str | None
    at: datetime
    source: str | None
    consumer: str | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    original_key: str | None
    partition: int
    offset: int


class DeadLettersOut(_Out):
    """How many messages the dead-letter topic holds, and the newest of them."""

    topic: str
    total: int
    recent: list[DeadLetterOut]


def _row(row: OpenApplication) -> OpenApplicationOut:
    return OpenApplicationOut.model_validate(row, from_attributes=True)


async def _overview(request: Request) -> StaffOverview:
    runtime: IntakeRuntime = request.app.state.runtime
    runtime.require_store()
    return StaffOverview(
        runtime.store,
        runtime.clock,
        runtime.calendar,
        [point.code for point in runtime.points],
    )


Staff = Annotated[StaffOverview, Depends(_overview)]
Ops = Annotated[Principal, Depends(require("ops"))]
ClerkOrOps = Annotated[Principal, Depends(require("clerk", "ops"))]


def build_staff_router() -> APIRouter:
    """The read-only routes of the staff pages."""
    router = APIRouter(prefix="/api/v1", tags=["staff"])

    @router.get(
        "/worklist",
        summary="A point's open applications: due date, working days left, deadline standing",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def worklist(
        principal: ClerkOrOps,
        staff: Staff,
        point: Annotated[str, Query(min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)],
        sort: WorklistOrder = WorklistOrder.DUE_DATE,
        descending: bool = False,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 20,
    ) -> WorklistOut:
        try:
            found = await staff.worklist(principal, point, sort, descending, page, per_page)
        except UnknownPointError:
            raise ProblemError(
                404, RuleCode.INVALID_REQUEST.value, "Not found", "no such acceptance point"
            ) from None
        except PointNotAllowedError:
            raise ProblemError(
                403, "forbidden", "Forbidden", "this clerk works at another acceptance point"
            ) from None
        return WorklistOut(
            point=point,
            items=[_row(row) for row in found.items],
            total=found.total,
            page=found.page,
            per_page=found.per_page,
        )

    @router.get(
        "/overview",
        summary="Open, at risk and breached per acceptance point; the nearest deadlines",
        responses=problem_responses(401, 403, 503),
    )
    async def overview(_principal: Ops, staff: Staff, request: Request) -> OverviewOut:
        runtime: IntakeRuntime = request.app.state.runtime
        found = await staff.overview(NEAREST_DEADLINES)
        return OverviewOut(
            today=runtime.clock.today(),
            points=[PointTallyOut.model_validate(t, from_attributes=True) for t in found.points],
            nearest=[_row(row) for row in found.nearest],
        )

    @router.get(
        "/calendar/years",
        summary="Calendar years: official or provisional, and the open due dates counted in each",
        responses=problem_responses(401, 403, 503),
    )
    async def years(_principal: ClerkOrOps, staff: Staff) -> CalendarYearsOut:
        return CalendarYearsOut(
            years=[
                CalendarYearOut.model_validate(year, from_attributes=True)
                for year in await staff.calendar_years()
            ]
        )

    @router.post(
        "/calendar/{year:int}/preview",
        summary="How many open due dates loading this arrangement would move (loads nothing)",
        responses=problem_responses(404, s404="No such path: the year is not a number"),
    )
    async def preview(
        year: Annotated[int, Path(ge=2000, le=2099)],
        body: CalendarIn,
        _principal: Ops,
        staff: Staff,
    ) -> CalendarPreviewOut:
        try:
            moved = await staff.preview(year, body.holidays, body.workdays)
        except ValueError as exc:
            raise invalid_arrangement(exc) from None
        return CalendarPreviewOut(
            year=year,
            moved=len(moved),
            applications=[MovedDueDateOut.model_validate(m, from_attributes=True) for m in moved],
        )

    @router.get(
        "/dead-letters",
        summary="Messages some consumer could not process: how many, and the newest (ids only)",
        responses=problem_responses(401, 403, 422, 503),
    )
    async def dead_letters(
        _principal: Ops,
        request: Request,
        recent: Annotated[int, Query(ge=0, le=MAX_RECENT_DEAD_LETTERS)] = 5,
    ) -> DeadLettersOut:
        runtime: IntakeRuntime = request.app.state.runtime
        topic = runtime.settings.deadletter_topic
        try:
            found = await read_dead_letters(runtime.settings, topic, recent)
        except TRANSIENT_ERRORS:
            raise unavailable("Kafka") from None
        return DeadLettersOut(
            topic=found.topic,
            total=found.total,
            recent=[
                DeadLetterOut.model_validate(row, from_attributes=True) for row in found.recent
            ],
        )

    return router
