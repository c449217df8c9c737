"""RFC 9457 problem details for every error, so no client ever sees an HTML page or a bare 500.

Bad input is 422 with field errors; an unreachable store or broker is 503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5


class JsonResponse(JSONResponse):
    """JSON rendered with orjson (dates, UUIDs and non-ASCII text as they are); a JSONResponse,
    so the OpenAPI document shows each route's answer model."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ProblemResponse(JsonResponse):
    """JSON with the problem+json media type."""

    media_type = PROBLEM_CONTENT_TYPE


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})


def problem_body(
    status: int, code: str, title: str, detail: str, errors: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """The RFC 9457 document with the contract's `code` and optional field `errors`."""
    body: dict[str, Any] = {
        "type": f"https://permits.jinan.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = list(errors)
    return body


def problem_response(exc: ProblemError) -> ProblemResponse:
    """The answer to a `ProblemError`: its document, status and headers."""
    return ProblemResponse(
        problem_body(exc.status, exc.code, exc.title, exc.detail, exc.errors),
        status_code=exc.status,
        headers=exc.headers,
    )


def _field_path(location: Sequence[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """Problem details for the errors FastAPI hands to exception handlers: ProblemError,
    validation and HTTP errors. Outages and bugs are answered by `SharedLayers`
    (permits_common.web.middleware), which also counts and logs them."""

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> ProblemResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [
            {
                "field": _field_path(err.get("loc", ())),
                "code": str(err.get("type", "invalid")),
                "message": str(err.get("msg", "invalid value")),
            }
            for err in exc.errors()
        ]
        return ProblemResponse(
            problem_body(
                422, "invalid_request", "Invalid request", "The request is malformed.", errors
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ProblemResponse(
            problem_body(exc.status_code, code, str(exc.detail), str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )
