"""The applicant's status page (`/status`, no sign-in): `zh-Hant` by default, `zh-Hans`, `en`.

It shows status, due date and where to collect (or the tracking number of a posted card),
nothing else. An unknown application id and a wrong permit number give the same 404 page, and
each client may look up only so often (a bucket per address) so numbers cannot be guessed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from permits_console.i18n import applicant_language
from permits_console.web import Shared, render

Text = Annotated[str, Query(max_length=64)]


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/status")
    async def status(
        request: Request,
        shared: Shared,
        application_id: Text = "",
        travel_permit_number: Text = "",
        lang: Annotated[str | None, Query(max_length=10)] = None,
    ) -> Response:
        language = applicant_language(lang)
        application_id = application_id.strip()
        travel_permit_number = travel_permit_number.strip()
        context = {
            "language": language,
            "application_id": application_id,
            "travel_permit_number": travel_permit_number,
            "found": None,
        }
        if not application_id or not travel_permit_number:
            return render(request, "applicant/status.html", context, language=language)
        client = request.client.host if request.client else "unknown"
        if not shared.status_limit.allow(client):
            seconds = shared.status_limit.retry_after()
            return render(
                request,
                "applicant/status.html",
                {**context, "limited": seconds},
                status_code=429,
                language=language,
                headers={"Retry-After": str(seconds)},
            )
        answer = await shared.intake.call(
            "GET",
            f"/api/v1/applications/{application_id}/status",
            params={"travel_permit_number": travel_permit_number},
        )
        if not answer.ok:
            return render(
                request,
                "applicant/status.html",
                {**context, "not_found": True},
                status_code=404,
                language=language,
            )
        return render(
            request, "applicant/status.html", {**context, "found": answer.body}, language=language
        )

    return router
