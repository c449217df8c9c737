"""The intake API of contract.md under `/api/v1`.

Roles: `clerk` submits, dispatches posted cards, collects and reports cards lost; `ops` grants
extensions, revokes cards and loads calendars;
both read applications and due dates. Acceptance points (published reference data) and the
applicant's status page (guarded by the travel permit number) need no token.
"""

from __future__ import annotations

import hmac
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from permits_common.domain import travel_permit
from permits_common.domain.calendar import ISSUING_WORKING_DAYS
from permits_common.domain.card import ApplicationStatus, SlaState
from permits_common.domain.rule_codes import RuleCode
from permits_common.web.audited import audit_or_503
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import NO_CONTROL_CHARACTERS
from permits_common.web.openapi import problem_responses
from permits_common.web.problems import JsonResponse, ProblemError, ProblemResponse
from permits_intake.domain.collection import collection_of
from permits_intake.domain.forms import ApplicationForm
from permits_intake.domain.progress import effective_sla
from permits_intake.entrypoints.schemas import (
    AcceptancePointOut,
    AcceptedOut,
    ApplicantStatusOut,
    ApplicationOut,
    CalendarIn,
    CalendarOut,
    CardStatusOut,
    ClockIn,
    ClockOut,
    CollectionPlaceOut,
    DispatchIn,
    DueDateOut,
    ExtensionIn,
    RevokeIn,
    TrackingOut,
    invalid_arrangement,
)
from permits_intake.runtime import IntakeRuntime
from permits_intake.service.applications import application_not_found

IDEMPOTENCY_HEADER = "Idempotency-Key"
YEAR_NOT_A_NUMBER = "No such path: the year is not a number"
MAX_IDEMPOTENCY_KEY = 200
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 11, 30)
# The days from EARLIEST_DATE to LATEST_DATE as a pattern, so the document states the range the
# validator enforces (JSON Schema has no minimum for a date string).
DATE_IN_RANGE = r"^20([0-8][0-9]-(0[1-9]|1[0-2])|99-(0[1-9]|1[01]))-(0[1-9]|[12][0-9]|3[01])$"

Clerk = Annotated[Principal, Depends(require("clerk"))]
Ops = Annotated[Principal, Depends(require("ops"))]
ClerkOrOps = Annotated[Principal, Depends(require("clerk", "ops"))]
ApplicationId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
CardNumber = Annotated[str, Path(min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)]


# Dependencies are `async def` although they never wait: FastAPI runs a plain `def` dependency
# in its thread pool, a hand-off to a worker thread and back on every request.
async def _runtime(request: Request) -> IntakeRuntime:
    runtime: IntakeRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[IntakeRuntime, Depends(_runtime)]


async def idempotency_key(request: Request) -> str:
    """The `Idempotency-Key` header: required, 1-200 visible ASCII characters."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None or not key.strip():
        raise _bad_key("idempotency_key_required", "the Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise _bad_key("invalid", "at most 200 visible ASCII characters")
    return key


def _bad_key(code: str, message: str) -> ProblemError:
    return ProblemError(
        422,
        RuleCode.INVALID_REQUEST.value,
        "Invalid request",
        message,
        errors=[{"field": IDEMPOTENCY_HEADER, "code": code, "message": message}],
    )


_IDEMPOTENCY_PARAMETER = {
    "parameters": [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": True,
            "description": "A key of the clerk's choice per submission: the same key and body "
            "returns the first answer; the same key with another body is refused",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY,
                "pattern": r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$",
            },
            "example": "lixia-desk3-20260302-0001",
        }
    ]
}


def build_router(dev_endpoints: bool) -> APIRouter:
    """Every intake route; the dev clock only when `dev_endpoints`."""
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/acceptance-points",
        tags=["reference"],
        summary="The sixteen acceptance points (public: no token needed)",
    )
    async def list_points(runtime: Runtime) -> list[AcceptancePointOut]:
        return [
            AcceptancePointOut(
                code=p.code,
                name=p.name,
                district=p.district,
                address=p.address,
                phone=p.phone,
                issuing_authority=p.issuing_authority,
            )
            for p in runtime.points
        ]

    @router.post(
        "/applications",
        tags=["applications"],
        summary="Submit a first application, renewal or reissue",
        status_code=201,
        response_model=AcceptedOut,
        responses=problem_responses(401, 403, 409, 422, 503),
        openapi_extra=_IDEMPOTENCY_PARAMETER,
    )
    async def submit(
        form: ApplicationForm,
        principal: Clerk,
        runtime: Runtime,
        key: Annotated[str, Depends(idempotency_key)],
    ) -> Response:
        runtime.require_store()
        runtime.require_kafka()
        answer = await runtime.applications.submit(principal, key, form)
        if answer.status >= 400:
            return ProblemResponse(answer.body, status_code=answer.status)
        await audit_or_503(
            runtime.audit,
            principal,
            "application.submit",
            str(answer.body["id"]),
            str(answer.body["status"]),
            point=form.acceptance_point,
            purpose="accept an application",
        )
        return JsonResponse(
            answer.body,
            status_code=answer.status,
            headers={"Location": f"/api/v1/applications/{answer.body['id']}"},
        )

    @router.get(
        "/applications/{application_id}",
        tags=["applications"],
        summary="An application's status, deadline, card and history",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def get_application(
        application_id: ApplicationId, principal: ClerkOrOps, runtime: Runtime
    ) -> ApplicationOut:
        record = await runtime.store.application(application_id)
        await audit_or_503(
            runtime.audit,
            principal,
            "application.read",
            application_id,
            "found" if record is not None else "not_found",
            point=record.stored["acceptance_point"] if record is not None else principal.scope,
            purpose="application status, card and history",
        )
        if record is None:
            raise application_not_found()
        return application_view(record.shown(), runtime.clock.today())

    @router.get(
        "/applications/{application_id}/status",
        tags=["applicant"],
        summary="The applicant's status page (no token; the travel permit number proves who)",
        responses=problem_responses(404, 422, 503),
    )
    async def applicant_status(
        application_id: ApplicationId,
        runtime: Runtime,
        travel_permit_number: Annotated[
            str, Query(min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)
        ],
    ) -> ApplicantStatusOut:
        record = await runtime.store.application(application_id)
        if record is None or not hmac.compare_digest(
            travel_permit.base_number(travel_permit_number.strip()).encode(),
            str(record.stored["person"]).encode(),
        ):
            raise application_not_found()
        document = record.shown()
        view = application_view(document, runtime.clock.today())
        point = next(p for p in runtime.points if p.code == document["acceptance_point"])
        return ApplicantStatusOut(
            id=view.id,
            status=view.status,
            due_date=view.due_date,
            sla=view.sla,
            collect_at=CollectionPlaceOut(
                name=point.name, address=point.address, phone=point.phone
            ),
            collection_method=view.collection.method,
            tracking=TrackingOut(
                carrier=view.dispatch.carrier, tracking_number=view.dispatch.tracking_number
            )
            if view.dispatch
            else None,
        )

    @router.post(
        "/applications/{application_id}/collect",
        tags=["applications"],
        summary="The applicant collected the card (only from ready)",
        responses=problem_responses(401, 403, 404, 409, 503),
    )
    async def collect(
        application_id: ApplicationId, principal: Clerk, runtime: Runtime
    ) -> ApplicationOut:
        runtime.require_store()
        runtime.require_kafka()
        document = await runtime.applications.collect(principal, application_id)
        await audit_or_503(
            runtime.audit,
            principal,
            "application.collect",
            application_id,
            str(document["status"]),
            point=document["acceptance_point"],
            purpose="hand over the card",
        )
        return application_view(document, runtime.clock.today())

    @router.post(
        "/applications/{application_id}/dispatch",
        tags=["applications"],
        summary="A posted card was handed to the carrier (only from ready, only for post)",
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )
    async def dispatch(
        application_id: ApplicationId, body: DispatchIn, principal: Clerk, runtime: Runtime
    ) -> ApplicationOut:
        runtime.require_store()
        runtime.require_kafka()
        document = await runtime.dispatch.dispatch(
            principal, application_id, body.carrier, body.tracking_number
        )
        await audit_or_503(
            runtime.audit,
            principal,
            "application.dispatch",
            application_id,
            str(document["status"]),
            point=document["acceptance_point"],
            purpose="post the card",
        )
        return application_view(document, runtime.clock.today())

    @router.post(
        "/applications/{application_id}/extension",
        tags=["applications"],
        summary="Extend the issuing time (延长): at most 10 working days in total, before ready",
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )
    async def extend(
        application_id: ApplicationId, body: ExtensionIn, principal: Ops, runtime: Runtime
    ) -> ApplicationOut:
        runtime.require_store()
        runtime.require_kafka()
        document = await runtime.extension.grant(application_id, body.working_days, body.reason)
        await audit_or_503(
            runtime.audit,
            principal,
            "application.extend",
            application_id,
            str(document["status"]),
            point=document["acceptance_point"],
            purpose="extend the issuing time",
        )
        return application_view(document, runtime.clock.today())

    @router.post(
        "/cards/{card_number}/report-lost",
        tags=["cards"],
        summary="Report a card lost: invalid from now on (published before answering)",
        responses=problem_responses(401, 403, 404, 409, 503),
    )
    async def report_lost(
        card_number: CardNumber, principal: Clerk, runtime: Runtime
    ) -> CardStatusOut:
        runtime.require_kafka()
        card = await runtime.cards.report_lost(principal, card_number)
        await audit_or_503(
            runtime.audit,
            principal,
            "card.report_lost",
            card.number,
            str(card.status),
            point=principal.scope,
            purpose="record a lost card",
        )
        return CardStatusOut(
            card_number=card.number, issue_count=card.issue_count, status=card.status
        )

    @router.post(
        "/cards/{card_number}/revoke",
        tags=["cards"],
        summary="Revoke a card (注销): published before answering",
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )
    async def revoke(
        card_number: CardNumber, body: RevokeIn, principal: Ops, runtime: Runtime
    ) -> CardStatusOut:
        runtime.require_kafka()
        card = await runtime.cards.revoke(card_number, body.reason)
        await audit_or_503(
            runtime.audit,
            principal,
            "card.revoke",
            card.number,
            str(card.status),
            purpose="revoke a card",
        )
        return CardStatusOut(
            card_number=card.number, issue_count=card.issue_count, status=card.status
        )

    @router.get(
        "/calendar/due-date",
        tags=["calendar"],
        summary="The due date (20th working day after acceptance) for a day of acceptance",
        responses=problem_responses(401, 403, 422),
    )
    async def due_date(
        _principal: ClerkOrOps,
        runtime: Runtime,
        accepted_on: Annotated[
            date,
            Query(
                ge=EARLIEST_DATE,
                le=LATEST_DATE,
                description=f"A day from {EARLIEST_DATE} to {LATEST_DATE}",
                json_schema_extra={"pattern": DATE_IN_RANGE},
                examples=["2026-03-02"],
            ),
        ],
    ) -> DueDateOut:
        due = runtime.calendar.due_date(accepted_on)
        return DueDateOut(
            due_date=due.due_date, provisional=due.provisional, working_days=ISSUING_WORKING_DAYS
        )

    @router.put(
        "/calendar/{year:int}",
        tags=["calendar"],
        summary="Load a year's official holiday arrangement; provisional deadlines are recomputed",
        responses=problem_responses(404, s404=YEAR_NOT_A_NUMBER),
    )
    async def load_calendar(
        year: Annotated[int, Path(ge=EARLIEST_DATE.year, le=LATEST_DATE.year)],
        body: CalendarIn,
        _principal: Ops,
        runtime: Runtime,
    ) -> CalendarOut:
        runtime.require_store()
        runtime.require_kafka()
        try:
            arrangement = await runtime.calendar_loading.load_year(
                year, body.holidays, body.workdays
            )
        except ValueError as exc:
            raise invalid_arrangement(exc) from None
        return CalendarOut(
            year=year,
            holidays=sorted(arrangement.holidays),
            workdays=sorted(arrangement.workdays),
            official=arrangement.official,
        )

    if dev_endpoints:

        @router.put(
            "/dev/clock",
            tags=["development"],
            summary="Move the service clock (development and test only; 404 in production)",
            responses=problem_responses(401, 403, 422),
        )
        async def move_clock(body: ClockIn, _principal: Ops, runtime: Runtime) -> ClockOut:
            runtime.clock.set_offset(timedelta(days=body.offset_days))
            return ClockOut(offset_days=body.offset_days, today=runtime.clock.today())

    return router


def application_view(document: dict[str, Any], today: date) -> ApplicationOut:
    """The stored view, with the deadline standing as of today."""
    status = ApplicationStatus(document["status"])
    due = date.fromisoformat(document["due_date"])
    ready_on = document.get("ready_on")
    sla = effective_sla(
        SlaState(document["sla"]),
        status,
        due,
        today,
        date.fromisoformat(ready_on) if ready_on else None,
    )
    return ApplicationOut.model_validate(
        {
            "id": document["_id"],
            "kind": document["kind"],
            "acceptance_point": document.get("acceptance_point"),
            "status": status,
            "accepted_on": document["accepted_on"],
            "due_date": due,
            "due_date_provisional": document["due_date_provisional"],
            "sla": sla,
            "card": document.get("card"),
            "rejection": document.get("rejection"),
            "history": document.get("history", []),
            "collection": collection_of(document.get("collection")),
            "extension": document.get("extension"),
            "calendar": document.get("calendar"),
            "dispatch": document.get("dispatch"),
        }
    )
