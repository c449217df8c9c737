"""HTTP API on port 8003: verification for agencies; deliveries and reconciliation for ops."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field
from starlette.types import Scope

from permits_common.domain.agencies import Agency
from permits_common.mongo import Document
from permits_common.web.audited import audit_or_503
from permits_common.web.auth import Principal, principal_of, require
from permits_common.web.fast_path import add_fast_path_route
from permits_common.web.inputs import NO_CONTROL_CHARACTERS
from permits_common.web.openapi import problem_responses, success
from permits_common.web.problems import JsonResponse, ProblemError
from permits_rights.service.reconciliation import reconcile
from permits_rights.service.runtime import Runtime


class VerificationAnswer(BaseModel):
    """Exactly contract.md's answer; `valid_until` only when valid."""

    valid: bool
    status: str
    valid_until: str | None = None


class AggregatesOut(BaseModel):
    """Holder counts, no card numbers."""

    holders_by_status: dict[str, int]
    cards: int
    as_of: str


class AgencyOut(BaseModel):
    """One agency's policy: its purpose, the fields it receives, its channels."""

    agency: str
    purpose: str
    fields: list[str]
    feed: bool
    verify: bool
    aggregates: bool
    webhook: bool


class DeliveryOut(BaseModel):
    """One status sent to the agency, on its topic or to its webhook, and how it went."""

    event_id: str
    channel: Literal["topic", "webhook"]
    card_number: str
    issue_count: int
    status: str
    outcome: str
    attempts: int
    last_error: str | None
    created_at: Any
    delivered_at: Any
    updated_at: Any


class DeliveryLogOut(BaseModel):
    """The agency's deliveries, newest first (or every delivery of one card)."""

    agency: str
    deliveries: list[DeliveryOut]


class StatusReconciliationOut(BaseModel):
    """Card issues with one status: in the register, sent, confirmed, missing."""

    in_register: int = Field(alias="register")
    sent: int
    confirmed: int
    missing: int


class ReconciliationOut(BaseModel):
    """What the agency should have against what it confirmed."""

    agency: str
    channels: list[str]
    by_status: dict[str, StatusReconciliationOut]
    missing: int
    note: str | None = None


class ClockMovedOut(BaseModel):
    """The service's time after moving its clock."""

    now: str
    today: str


class ClockOffset(BaseModel):
    """How far to move the service clock ahead of real time (development only)."""

    offset_seconds: float = Field(ge=0, le=20 * 366 * 86400, strict=True)


AgencyKey = Annotated[
    str, Path(description="An agency's key", json_schema_extra={"enum": [a.value for a in Agency]})
]


VERIFY_NUMBER_MAX = 32
VERIFY_NAME_MAX = 200
VERIFY_ISSUE_COUNT_MAX = 999
_PLAIN_ISSUE_COUNT = re.compile(r"[1-9][0-9]{0,2}")
"""1 to 999 written plainly; other spellings pydantic accepts ("007", "+7") take the slow path."""
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
"""Refused in `number` and `name` (the slow path's 422): they become the audit entry's subject,
and the store cannot hold a NUL."""


def _query_params(query_string: bytes) -> dict[str, str]:
    """The query's parameters as Starlette's `QueryParams` reads them (`parse_qsl` of the
    latin-1 text, blank values kept, the last of a repeated name), without `parse_qsl`'s
    per-call argument handling, and without unquoting what has nothing to unquote."""
    params: dict[str, str] = {}
    for field in query_string.decode("latin-1").split("&"):
        if field:
            name, _, value = field.partition("=")
            params[_unquoted(name)] = _unquoted(value)
    return params


def _unquoted(text: str) -> str:
    """`parse_qsl`'s decoding of one name or value."""
    if "%" in text or "+" in text:
        return unquote(text.replace("+", " "))
    return text


def plain_verify_query(query_string: bytes) -> tuple[str, str, int | None] | None:
    """`number`, `name` and `issue_count` when the query is plainly valid for the declared
    parameters, decoded as Starlette decodes it (a repeated parameter: the last one wins);
    None for anything FastAPI should judge, so its 422 problem documents stay the answer to
    bad input."""
    params = _query_params(query_string)
    number = params.get("number")
    name = params.get("name")
    if number is None or name is None:
        return None
    if not (0 < len(number) <= VERIFY_NUMBER_MAX and 0 < len(name) <= VERIFY_NAME_MAX):
        return None
    if _CONTROL_CHARACTER.search(number) or _CONTROL_CHARACTER.search(name):
        return None
    issue_count = params.get("issue_count")
    if issue_count is None:
        return number, name, None
    if _PLAIN_ISSUE_COUNT.fullmatch(issue_count) is None:
        return None
    return number, name, int(issue_count)


def _agency(key: str) -> Agency:
    try:
        return Agency(key)
    except ValueError:
        raise ProblemError(404, "not_found", "Unknown agency", f"No agency {key!r}") from None


def _delivery_row(doc: Document) -> dict[str, Any]:
    return {
        "event_id": doc["_id"],
        "channel": "webhook",
        "card_number": doc["card_number"],
        "issue_count": doc["issue_count"],
        "status": doc["status"],
        "outcome": doc["state"],
        "attempts": doc["attempts"],
        "last_error": doc.get("last_error"),
        "created_at": doc["created_at"],
        "delivered_at": doc.get("delivered_at"),
        "updated_at": doc.get("updated_at"),
    }


def _topic_rows(runtime: Runtime, agency: Agency, card_number: str) -> list[dict[str, Any]]:
    """Every status of the card the broker acknowledged on the agency topics, in that order
    (the register's timeline of each issue)."""
    history = runtime.records.history(card_number)
    published = sorted(
        (
            (announcement.published_at, record.issue_count, announcement)
            for record in history.issues.values()
            for announcement in record.timeline
            if announcement.published_at is not None
        ),
        key=lambda row: (row[0], row[1]),
    )
    return [
        {
            "event_id": runtime.feed_event_id(
                history.card_number, issue_count, announcement.status.value, agency
            ),
            "channel": "topic",
            "card_number": history.card_number,
            "issue_count": issue_count,
            "status": announcement.status.value,
            "outcome": "delivered",
            "attempts": 1,
            "last_error": None,
            "created_at": announcement.changed_at,
            "delivered_at": published_at,
            "updated_at": published_at,
        }
        for published_at, issue_count, announcement in published
    ]


def install_verification(app: FastAPI, runtime: Runtime) -> None:
    """`GET /api/v1/verify`, on the app's own router. Its usual request takes the fast path
    (see permits_common.web.fast_path); the declared endpoint is the contract and serves the
    rest."""

    async def answer_verification(
        principal: Principal, number: str, name: str, issue_count: int | None
    ) -> JsonResponse:
        """The contract's answer to an agency, once its audit entry is on Kafka."""
        agency = principal.agency
        assert agency is not None
        if not runtime.policies[agency].verify:
            raise ProblemError(
                403, "forbidden", "Forbidden", "This agency receives aggregate figures only"
            )
        wait = runtime.verifier.retry_after(agency)
        if wait > 0:
            raise ProblemError(
                429,
                "rate_limited",
                "Too many requests",
                "The agency's verification rate limit is exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if not runtime.replica.ready.is_set():
            raise ProblemError(
                503,
                "service_unavailable",
                "Register loading",
                "The holder register is being rebuilt; retry shortly.",
                headers={"Retry-After": "2"},
            )
        verdict = runtime.verifier.verify(agency, number, name, issue_count)
        await audit_or_503(
            runtime.audit,
            principal,
            "verify",
            number.strip().upper(),
            verdict.status,
            agency=agency.value,
            purpose=runtime.policies[agency].purpose,
        )
        return JsonResponse(verdict.as_json())

    async def verify(
        principal: Annotated[Principal, Depends(require("agency"))],
        number: Annotated[
            str,
            Query(min_length=1, max_length=VERIFY_NUMBER_MAX, pattern=NO_CONTROL_CHARACTERS),
        ],
        name: Annotated[
            str, Query(min_length=1, max_length=VERIFY_NAME_MAX, pattern=NO_CONTROL_CHARACTERS)
        ],
        issue_count: Annotated[int | None, Query(ge=1, le=VERIFY_ISSUE_COUNT_MAX)] = None,
    ) -> JsonResponse:
        return await answer_verification(principal, number, name, issue_count)

    async def verify_fast(scope: Scope) -> JsonResponse | None:
        """An agency's request with plainly valid parameters, answered without FastAPI's
        validation; anything else (no token, another role, bad or unusual input) is declined
        and gets the declared route's answer."""
        principal = principal_of(scope)
        if principal is None or principal.kind != "agency":
            return None
        query = plain_verify_query(scope["query_string"])
        if query is None:
            return None
        return await answer_verification(principal, *query)

    add_fast_path_route(
        app,
        "/api/v1/verify",
        verify,
        verify_fast,
        methods=["GET"],
        summary="Verify a presented card (agency)",
        response_model=VerificationAnswer,
        response_model_exclude_none=True,
        responses=problem_responses(
            403, 429, s403="Not an agency, or an agency whose policy has no verification"
        ),
    )


def build_router(runtime: Runtime) -> APIRouter:
    """Routes bound to the running service (all but verification)."""
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/aggregates",
        summary="Holder counts by status (hmt_office, ops)",
        response_model=None,
        responses={
            **success(AggregatesOut, "Holder counts"),
            **problem_responses(403, s403="Not ops, nor an agency whose policy has them"),
        },
    )
    async def aggregates(
        principal: Annotated[Principal, Depends(require("agency", "ops"))],
    ) -> dict[str, Any]:
        agency = principal.agency
        if agency is not None and not runtime.policies[agency].aggregates:
            raise ProblemError(403, "forbidden", "Forbidden", "Aggregates are not in this policy")
        return {
            "holders_by_status": runtime.index.status_counts(),
            "cards": len(runtime.index),
            "as_of": runtime.clock.now().isoformat(),
        }

    @router.get(
        "/agencies",
        summary="Agency policies and channels (ops)",
        response_model=list[AgencyOut],
    )
    async def agencies(
        _principal: Annotated[Principal, Depends(require("ops"))],
    ) -> list[dict[str, Any]]:
        return [
            {
                "agency": policy.agency.value,
                "purpose": policy.purpose,
                "fields": sorted(policy.fields),
                "feed": policy.feed,
                "verify": policy.verify,
                "aggregates": policy.aggregates,
                "webhook": policy.agency in runtime.webhook_targets,
            }
            for policy in runtime.policies.values()
        ]

    @router.get(
        "/agencies/{key}/deliveries",
        summary="Delivery log of one agency (ops)",
        response_model=None,
        responses={
            **success(DeliveryLogOut, "The deliveries"),
            **problem_responses(404, s404="Unknown agency"),
        },
    )
    async def deliveries(
        key: AgencyKey,
        principal: Annotated[Principal, Depends(require("ops"))],
        card_number: Annotated[
            str | None, Query(min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JsonResponse:
        agency = _agency(key)
        policy = runtime.policies[agency]
        rows: list[dict[str, Any]] = []
        if card_number is None:
            docs = await runtime.deliveries.recent(agency.value, limit)
            rows = [_delivery_row(doc) for doc in docs]
        elif policy.feed:
            rows += _topic_rows(runtime, agency, card_number)
            docs = await runtime.deliveries.for_card(agency.value, card_number, limit)
            rows += [_delivery_row(doc) for doc in docs]
            await audit_or_503(
                runtime.audit,
                principal,
                "deliveries.read",
                card_number,
                f"{len(rows)} deliveries",
                agency=agency.value,
                purpose="agency delivery log",
            )
        return JsonResponse({"agency": agency.value, "deliveries": rows[:limit]})

    @router.get(
        "/agencies/{key}/reconciliation",
        summary="Sent and confirmed vs register (ops)",
        response_model=None,
        responses={
            **success(ReconciliationOut, "The reconciliation report"),
            **problem_responses(404, s404="Unknown agency"),
        },
    )
    async def reconciliation(
        key: AgencyKey, _principal: Annotated[Principal, Depends(require("ops"))]
    ) -> dict[str, Any]:
        agency = _agency(key)
        return await reconcile(
            runtime.policies[agency],
            runtime.records,
            runtime.deliveries,
            agency in runtime.webhook_targets,
        )

    if runtime.settings.env != "production":

        @router.put(
            "/dev/clock",
            summary="Move the service clock (development only, ops)",
            response_model=None,
            responses=success(ClockMovedOut, "The clock moved"),
        )
        async def move_clock(
            body: ClockOffset, _principal: Annotated[Principal, Depends(require("ops"))]
        ) -> dict[str, Any]:
            runtime.clock.set_offset(timedelta(seconds=body.offset_seconds))
            return {"now": runtime.clock.now().isoformat(), "today": runtime.clock.today()}

    return router


def install_routes(app: FastAPI, runtime: Runtime) -> None:
    """Mount the API on an app made by permits_common.web.app.create_app."""
    install_verification(app, runtime)
    app.include_router(build_router(runtime))
