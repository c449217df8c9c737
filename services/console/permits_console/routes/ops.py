"""Pages of the operator on duty (Simplified Chinese): per point open / at risk / breached, the
nearest deadlines, and the calendar years with a year's arrangement loaded from a form after a
preview of how many due dates it would move."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from permits_console.routes.clerk import acceptance_points
from permits_console.web import CsrfChecked, Ops, Shared, render

DATE_LIST_LIMIT = 366
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
        return render(request, "ops/overview.html", {"overview": answer.body, "names": points})

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
