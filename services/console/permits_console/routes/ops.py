"""Pages of the operator on duty (Simplified Chinese): per point open / at risk / breached, the
nearest deadlines and the dead letters; an application with the extension (延长) of its issuing
time; the calendar years with a year's arrangement loaded from a form after a preview of how many
due dates it would move."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from permits_console.forms import refusals_of, split_refusals
from permits_console.routes.clerk import ApplicationId, acceptance_points, point_name
from permits_console.services import ServiceDownError
from permits_console.web import CsrfChecked, ForbiddenError, Ops, Shared, error_page, render

DATE_LIST_LIMIT = 366
RECENT_DEAD_LETTERS = 5
EXTENSION_FIELDS = ("working_days", "reason")
EXTENSION_IDS = {"working_days": "working-days", "reason": "reason"}
_SEPARATORS = re.compile(r"[\s,，、;；]+")


def parse_dates(text: str) -> tuple[list[date], list[str]]:
    """Dates from a textarea (one a line, or separated by commas); the pieces that are not."""
    days: list[date] = []
    bad: list[str] = []
    for piece in _SEPARATORS.split(text.strip()):
        if not piece:
            continue
        try:
            days.append(date.fromisoformat(piece))
        except ValueError:
            bad.append(piece)
    return days[:DATE_LIST_LIMIT], bad


def build_router() -> APIRouter:
    router = APIRouter(prefix="/ops")

    @router.get("")
    async def overview(request: Request, user: Ops, shared: Shared) -> Response:
        answer = await shared.intake.call("GET", "/api/v1/overview", token=user.token)
        points = {p["code"]: p["name"] for p in await acceptance_points(shared)}
        try:
            dead = await shared.intake.call(
                "GET",
                "/api/v1/dead-letters",
                token=user.token,
                params={"recent": RECENT_DEAD_LETTERS},
            )
            dead_letters = dead.body if dead.ok else None
        except ServiceDownError:
            dead_letters = None
        return render(
            request,
            "ops/overview.html",
            {"overview": answer.body, "names": points, "dead_letters": dead_letters},
        )

    async def _application_page(
        request: Request,
        user: Ops,
        shared: Shared,
        application_id: str,
        *,
        done: str | None = None,
        values: dict[str, str] | None = None,
        refusals: dict[str, list[dict[str, str]]] | None = None,
        status_code: int = 200,
    ) -> Response:
        answer = await shared.intake.call(
            "GET", f"/api/v1/applications/{application_id}", token=user.token
        )
        if answer.status == 404:
            return error_page(request, 404, "error.not_found_title", "error.not_found")
        if not answer.ok:
            raise ForbiddenError()
        placed, general = split_refusals(refusals or {}, EXTENSION_FIELDS)
        points = await acceptance_points(shared)
        return render(
            request,
            "ops/application.html",
            {
                "app": answer.body,
                "point_name": point_name(points, answer.body.get("acceptance_point") or ""),
                "done": done,
                "values": values or {},
                "errors": placed,
                "general": general,
                "ids": EXTENSION_IDS,
            },
            status_code=status_code,
        )

    @router.get("/applications/{application_id}")
    async def application(
        request: Request,
        application_id: ApplicationId,
        user: Ops,
        shared: Shared,
        done: Annotated[str | None, Query(max_length=20)] = None,
    ) -> Response:
        return await _application_page(request, user, shared, application_id, done=done)

    @router.post("/applications/{application_id}/extension", dependencies=[CsrfChecked])
    async def extend(
        request: Request,
        application_id: ApplicationId,
        user: Ops,
        shared: Shared,
        working_days: Annotated[str, Form(max_length=10)] = "",
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        values = {"working_days": working_days.strip(), "reason": reason.strip()}
        answer = await shared.intake.call(
            "POST",
            f"/api/v1/applications/{application_id}/extension",
            token=user.token,
            json={name: value for name, value in values.items() if value},
        )
        if answer.ok:
            return RedirectResponse(
                f"/ops/applications/{application_id}?done=extended", status_code=303
            )
        return await _application_page(
            request,
            user,
            shared,
            application_id,
            values=values,
            refusals=refusals_of(answer),
            status_code=answer.status,
        )

    @router.get("/agencies")
    async def agencies(request: Request, user: Ops, shared: Shared) -> Response:
        listed = await shared.rights.call("GET", "/api/v1/agencies", token=user.token)
        names = [row["agency"] for row in listed.body] if listed.ok else []
        reports = await asyncio.gather(
            *(
                shared.rights.call(
                    "GET", f"/api/v1/agencies/{name}/reconciliation", token=user.token
                )
                for name in names
            )
        )
        rows = [report.body for report in reports if report.ok]
        return render(request, "ops/agencies.html", {"agencies": rows})

    async def _calendar_page(
        request: Request,
        user: Ops,
        shared: Shared,
        extra: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response:
        answer = await shared.intake.call("GET", "/api/v1/calendar/years", token=user.token)
        years = answer.body["years"] if answer.ok else []
        context: dict[str, Any] = {
            "years": years,
            "form": {},
            "preview": None,
            "errors": [],
            "loaded": None,
        }
        return render(
            request, "ops/calendar.html", {**context, **(extra or {})}, status_code=status_code
        )

    @router.get("/calendar")
    async def calendar(
        request: Request, user: Ops, shared: Shared, loaded: int | None = None
    ) -> Response:
        return await _calendar_page(request, user, shared, {"loaded": loaded})

    @router.post("/calendar", dependencies=[CsrfChecked])
    async def calendar_form(
        request: Request,
        user: Ops,
        shared: Shared,
        year: Annotated[int, Form(ge=2000, le=2099)],
        holidays: Annotated[str, Form(max_length=20_000)] = "",
        workdays: Annotated[str, Form(max_length=20_000)] = "",
        action: Annotated[str, Form(max_length=10)] = "preview",
    ) -> Response:
        form = {"year": year, "holidays": holidays, "workdays": workdays}
        holiday_days, bad_holidays = parse_dates(holidays)
        workday_days, bad_workdays = parse_dates(workdays)
        bad = bad_holidays + bad_workdays
        if bad:
            errors = [{"key": "cal.bad_date", "value": piece} for piece in bad]
            return await _calendar_page(
                request, user, shared, {"form": form, "errors": errors}, status_code=422
            )
        body = {
            "holidays": [day.isoformat() for day in holiday_days],
            "workdays": [day.isoformat() for day in workday_days],
        }
        if action == "load":
            answer = await shared.intake.call(
                "PUT", f"/api/v1/calendar/{year}", token=user.token, json=body
            )
            if answer.ok:
                return RedirectResponse(f"/ops/calendar?loaded={year}", status_code=303)
        else:
            answer = await shared.intake.call(
                "POST", f"/api/v1/calendar/{year}/preview", token=user.token, json=body
            )
            if answer.ok:
                return await _calendar_page(
                    request, user, shared, {"form": form, "preview": answer.body}
                )
        detail = answer.body.get("detail", "") if isinstance(answer.body, dict) else ""
        return await _calendar_page(
            request,
            user,
            shared,
            {"form": form, "errors": [{"key": "cal.invalid", "value": detail}]},
            status_code=422,
        )

    return router
