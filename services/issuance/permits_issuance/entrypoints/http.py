"""HTTP side of issuance (port 8002): ops endpoints, production callbacks, SLA summary, dev clock.

The production centre is not a token holder: its callbacks are authenticated by an HMAC of the
raw body with the shared secret (`X-Permits-Signature: sha256=<hex>`), like agency webhooks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from permits_common.kafka import kafka_reachable
from permits_common.mongo import ping
from permits_common.web.app import create_app, no_lifespan
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import WholeNumber
from permits_common.web.openapi import problem_responses, success
from permits_common.web.problems import ProblemError
from permits_issuance.domain.production import SIGNATURE_HEADER, signature_matches
from permits_issuance.runtime import SERVICE, IssuanceRuntime
from permits_issuance.service.production import UnknownOrderError


class ProductionCallback(BaseModel):
    """The centre's report on one attempt of an order."""

    order_id: str = Field(min_length=1, max_length=100)
    attempt: WholeNumber = Field(ge=1)
    status: Literal["ready", "failed"]
    error: str | None = Field(default=None, max_length=500)


class NearestDeadlineOut(BaseModel):
    """An open application close to its due date (no personal data)."""

    application_id: str
    acceptance_point: str
    due_date: str
    provisional: bool
    state: str
    extension_working_days: int


class SlaSummaryOut(BaseModel):
    """Open applications by deadline state and point, and the nearest deadlines."""

    today: str
    open: int
    by_state: dict[str, int]
    by_point: dict[str, dict[str, int]]
    nearest_deadlines: list[NearestDeadlineOut]


class ProvisionalDeadlineOut(BaseModel):
    """An open deadline counted over a year whose official arrangement is not loaded."""

    application_id: str
    acceptance_point: str
    accepted_on: str
    due_date: str
    extension_working_days: int
    calendar: dict[str, Any] | None
    state: str


class ProvisionalDeadlinesOut(BaseModel):
    """Whether the year is still provisional, and the deadlines counted over it."""

    year: int
    provisional: bool
    deadlines: list[ProvisionalDeadlineOut]


class ClockMovedOut(BaseModel):
    """The clock after moving it, and how many events the timer pass raised."""

    offset_days: int
    today: str
    events_raised: int


class ClockOffset(BaseModel):
    """How many days the service's clock runs ahead of real time (0 = real time)."""

    offset_days: WholeNumber = Field(ge=-3650, le=3650)


def build_http_app(runtime: IssuanceRuntime) -> FastAPI:
    """The FastAPI app served inside the Faust worker."""
    settings = runtime.settings
    app = create_app(
        service=SERVICE,
        title="Permits issuance",
        description="Card numbers, card lifecycle and the 20-working-day deadline clock.",
        settings=settings,
        checks={
            "kafka": lambda: kafka_reachable(settings),
            "store": lambda: ping(runtime.store.database),
        },
        lifespan=no_lifespan,
    )
    router = APIRouter(prefix="/api/v1")
    secret = settings.production_callback_secret.get_secret_value().encode()

    @router.post(
        "/production/callbacks",
        status_code=204,
        summary="The card production centre reports an order's outcome (HMAC-signed)",
        responses=problem_responses(
            401, 404, s401=f"No or a wrong {SIGNATURE_HEADER}", s404="Unknown order"
        ),
        openapi_extra={
            "parameters": [
                {
                    "name": SIGNATURE_HEADER,
                    "in": "header",
                    "required": True,
                    "description": "HMAC-SHA256 of the raw body with the shared secret",
                    "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ProductionCallback.model_json_schema()}},
            },
        },
    )
    async def production_callback(request: Request) -> Response:
        body = await request.body()
        if not signature_matches(secret, body, request.headers.get(SIGNATURE_HEADER)):
            raise ProblemError(
                401, "unauthorized", "Bad signature", f"Sign the body in {SIGNATURE_HEADER}"
            )
        try:
            callback = ProductionCallback.model_validate_json(body)
        except ValidationError as exc:
            raise ProblemError(
                422,
                "invalid_request",
                "Invalid request",
                "The callback is malformed.",
                errors=[
                    {
                        "field": ".".join(str(p) for p in err["loc"]) or "body",
                        "code": str(err["type"]),
                        "message": str(err["msg"]),
                    }
                    for err in exc.errors()
                ],
            ) from None
        if runtime.stopping:
            raise ProblemError(
                503,
                "service_unavailable",
                "Shutting down",
                "Call back again later",
                headers={"Retry-After": "5"},
            )
        await runtime.ensure_started()
        try:
            async with runtime.handling():
                await runtime.production.callback(
                    callback.order_id, callback.attempt, callback.status, callback.error
                )
        except UnknownOrderError:
            raise ProblemError(404, "not_found", "Unknown order", "No such order") from None
        return Response(status_code=204)

    @router.get(
        "/sla/summary",
        summary="Open applications by deadline state and point",
        response_model=None,
        responses=success(SlaSummaryOut, "The summary"),
    )
    async def sla_summary(
        _principal: Annotated[Principal, Depends(require("ops"))],
    ) -> dict[str, Any]:
        await runtime.ensure_started()
        return await runtime.deadlines.summary()

    @router.get(
        "/sla/provisional",
        summary="Open deadlines counted over a year whose official arrangement is not loaded",
        response_model=None,
        responses=success(ProvisionalDeadlinesOut, "The year and its provisional deadlines"),
    )
    async def provisional_deadlines(
        _principal: Annotated[Principal, Depends(require("ops"))],
        year: Annotated[int, Query(ge=2000, le=2099)],
    ) -> dict[str, Any]:
        await runtime.ensure_started()
        return {
            "year": year,
            "provisional": runtime.calendar.current.is_provisional(year),
            "deadlines": await runtime.deadlines.provisional_deadlines(year),
        }

    if settings.dev_endpoints_enabled:

        @router.put(
            "/dev/clock",
            summary="Move the clock (not in production); runs the timers",
            response_model=None,
            responses=success(ClockMovedOut, "The clock moved; the timers ran"),
        )
        async def move_clock(
            _principal: Annotated[Principal, Depends(require("ops"))],
            offset: Annotated[ClockOffset, Body()],
        ) -> dict[str, Any]:
            await runtime.ensure_started()
            runtime.clock.set_offset(timedelta(days=offset.offset_days))
            raised = await runtime.timer_pass()
            return {
                "offset_days": offset.offset_days,
                "today": runtime.clock.today().isoformat(),
                "events_raised": raised,
            }

    app.include_router(router)
    return app
