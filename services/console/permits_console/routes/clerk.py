"""Pages of a clerk at an acceptance point (Simplified Chinese): the worklist, the new
application form, an application with its actions, and the printable acceptance receipt.

A clerk bound to one point (`clerk:<POINT>`) sees that point only: another point's application
is a 403 page, whatever the link.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from permits_console.forms import (
    FIELD_IDS,
    application_body,
    errors_by_field,
    form_values,
    refusals_of,
    split_refusals,
)
from permits_console.services import Answer
from permits_console.web import Clerk, CsrfChecked, ForbiddenError, Shared, error_page, render

ApplicationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
SORTS = ("due_date", "accepted_on", "status")
PER_PAGE = 20
MAX_KEY = 200
DISPATCH_FIELDS = ("carrier", "tracking_number")


async def acceptance_points(shared: Shared) -> list[dict[str, Any]]:
    """The sixteen points (public reference data), as intake publishes them."""
    answer = await shared.intake.call("GET", "/api/v1/acceptance-points")
    points: list[dict[str, Any]] = answer.body if answer.ok else []
    return points


def _point_for(user: Clerk, requested: str | None, points: list[dict[str, Any]]) -> str:
    codes = [point["code"] for point in points]
    scope = user.principal.scope
    if scope is not None:
        if requested and requested != scope:
            raise ForbiddenError("forbidden.other_point", point=requested)
        return scope
    if requested and requested in codes:
        return requested
    return codes[0] if codes else ""


async def _application(shared: Shared, user: Clerk, application_id: str) -> Answer:
    """The application as intake shows it, once the clerk may see it (404 page, 403 page)."""
    answer = await shared.intake.call(
        "GET", f"/api/v1/applications/{application_id}", token=user.token
    )
    if answer.status == 404:
        raise LookupError(application_id)
    if not answer.ok:
        raise ForbiddenError()
    point = answer.body.get("acceptance_point")
    if not user.principal.may_act_for_point(str(point)):
        raise ForbiddenError("forbidden.other_point", point=point)
    return answer


def point_name(points: list[dict[str, Any]], code: str) -> str:
    return next((point["name"] for point in points if point["code"] == code), code)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/clerk")

    @router.get("")
    async def worklist(
        request: Request,
        user: Clerk,
        shared: Shared,
        point: Annotated[str | None, Query(max_length=32)] = None,
        sort: Annotated[str, Query(max_length=20)] = "due_date",
        descending: bool = False,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    ) -> Response:
        points = await acceptance_points(shared)
        chosen = _point_for(user, point, points)
        sort = sort if sort in SORTS else "due_date"
        answer = await shared.intake.call(
            "GET",
            "/api/v1/worklist",
            token=user.token,
            params={
                "point": chosen,
                "sort": sort,
                "descending": descending,
                "page": page,
                "per_page": PER_PAGE,
            },
        )
        if answer.status == 403:
            raise ForbiddenError("forbidden.other_point", point=chosen)
        listed: dict[str, Any] = answer.body if answer.ok else {"items": [], "total": 0, "page": 1}
        return render(
            request,
            "clerk/worklist.html",
            {
                "points": points,
                "point": chosen,
                "point_name": point_name(points, chosen),
                "bound": user.principal.scope is not None,
                "listed": listed,
                "pages": max(1, math.ceil(listed["total"] / PER_PAGE)),
                "sort": sort,
                "descending": descending,
            },
        )

    async def _form_page(
        request: Request,
        user: Clerk,
        shared: Shared,
        values: dict[str, str],
        errors: dict[str, list[dict[str, str]]] | None = None,
        general: list[dict[str, str]] | None = None,
        status_code: int = 200,
        point: str | None = None,
    ) -> Response:
        points = await acceptance_points(shared)
        return render(
            request,
            "clerk/new.html",
            {
                "values": values,
                "errors": errors or {},
                "general": general or [],
                "ids": FIELD_IDS,
                "idempotency_key": uuid.uuid4().hex,
                "points": points,
                "point": _point_for(user, point, points),
                "bound": user.principal.scope is not None,
            },
            status_code=status_code,
        )

    @router.get("/applications/new")
    async def new_application(
        request: Request,
        user: Clerk,
        shared: Shared,
        point: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        return await _form_page(request, user, shared, form_values({}), point=point)

    @router.post("/applications", dependencies=[CsrfChecked])
    async def submit(request: Request, user: Clerk, shared: Shared) -> Response:
        posted = await request.form()
        values = form_values(posted)
        point = str(posted.get("acceptance_point") or "")
        key = str(posted.get("idempotency_key") or "")[:MAX_KEY] or uuid.uuid4().hex
        chosen = _point_for(user, point or None, await acceptance_points(shared))
        answer = await shared.intake.call(
            "POST",
            "/api/v1/applications",
            token=user.token,
            json=application_body(values, chosen),
            headers={"Idempotency-Key": key},
        )
        if answer.status == 201:
            return RedirectResponse(
                f"/clerk/applications/{answer.body['id']}?done=accepted", status_code=303
            )
        if answer.status == 403:
            raise ForbiddenError("forbidden.other_point", point=chosen)
        placed, unplaced = errors_by_field(refusals_of(answer))
        return await _form_page(
            request, user, shared, values, placed, unplaced, status_code=422, point=chosen
        )

    async def _page(
        request: Request,
        shared: Shared,
        app: dict[str, Any],
        *,
        done: str | None = None,
        values: dict[str, str] | None = None,
        refusals: dict[str, list[dict[str, str]]] | None = None,
        status_code: int = 200,
    ) -> Response:
        """The application page, with the dispatch form's inputs and refusals when it was sent."""
        placed, general = split_refusals(refusals or {}, DISPATCH_FIELDS)
        points = await acceptance_points(shared)
        return render(
            request,
            "clerk/application.html",
            {
                "app": app,
                "point_name": point_name(points, app.get("acceptance_point") or ""),
                "done": done,
                "values": values or {"carrier": "EMS"},
                "errors": placed,
                "general": general,
                "ids": {name: f"dispatch-{name.replace('_', '-')}" for name in DISPATCH_FIELDS},
            },
            status_code=status_code,
        )

    @router.get("/applications/{application_id}")
    async def application_page(
        request: Request,
        application_id: ApplicationId,
        user: Clerk,
        shared: Shared,
        done: Annotated[str | None, Query(max_length=20)] = None,
    ) -> Response:
        try:
            answer = await _application(shared, user, application_id)
        except LookupError:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        return await _page(request, shared, answer.body, done=done)

    async def _act(
        request: Request,
        user: Clerk,
        shared: Shared,
        application_id: str,
        path: str,
        json: Any = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        """Ask intake to act; back to the page when done, or the page again with the refusal
        (next to its input where it has one)."""
        answer = await shared.intake.call("POST", path, token=user.token, json=json)
        if answer.ok:
            return RedirectResponse(
                f"/clerk/applications/{application_id}?done=ok", status_code=303
            )
        current = await _application(shared, user, application_id)
        return await _page(
            request,
            shared,
            current.body,
            values=values,
            refusals=refusals_of(answer),
            status_code=answer.status,
        )

    @router.post("/applications/{application_id}/collect", dependencies=[CsrfChecked])
    async def collect(
        request: Request, application_id: ApplicationId, user: Clerk, shared: Shared
    ) -> Response:
        try:
            await _application(shared, user, application_id)
        except LookupError:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        return await _act(
            request, user, shared, application_id, f"/api/v1/applications/{application_id}/collect"
        )

    @router.post("/applications/{application_id}/dispatch", dependencies=[CsrfChecked])
    async def dispatch(
        request: Request,
        application_id: ApplicationId,
        user: Clerk,
        shared: Shared,
        carrier: Annotated[str, Form(max_length=50)] = "",
        tracking_number: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        try:
            await _application(shared, user, application_id)
        except LookupError:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        values = {"carrier": carrier.strip(), "tracking_number": tracking_number.strip()}
        return await _act(
            request,
            user,
            shared,
            application_id,
            f"/api/v1/applications/{application_id}/dispatch",
            values,
            values,
        )

    @router.post("/applications/{application_id}/report-lost", dependencies=[CsrfChecked])
    async def report_lost(
        request: Request, application_id: ApplicationId, user: Clerk, shared: Shared
    ) -> Response:
        try:
            answer = await _application(shared, user, application_id)
        except LookupError:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        card = answer.body.get("card") or {}
        if not card.get("number"):
            return error_page(request, 409, "forbidden.title", "app.no_card")
        return await _act(
            request, user, shared, application_id, f"/api/v1/cards/{card['number']}/report-lost"
        )

    @router.get("/applications/{application_id}/receipt")
    async def receipt(
        request: Request, application_id: ApplicationId, user: Clerk, shared: Shared
    ) -> Response:
        try:
            answer = await _application(shared, user, application_id)
        except LookupError:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        points = await acceptance_points(shared)
        code = answer.body.get("acceptance_point") or ""
        point = next((p for p in points if p["code"] == code), {"name": code})
        return render(
            request,
            "clerk/receipt.html",
            {
                "app": answer.body,
                "point": point,
                "status_url": f"{shared.settings.console_public_url.rstrip('/')}/status",
            },
        )

    return router
