"""Fast-path routes: the usual request is answered by the plain function, everything it declines
by the declared endpoint, errors it raises become problem documents, and the declaration stays
the OpenAPI contract."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Query
from prometheus_client import REGISTRY
from starlette.types import Scope

from permits_common.settings import CommonSettings
from permits_common.web.app import create_app
from permits_common.web.auth import Principal, principal_of, require
from permits_common.web.fast_path import add_fast_path_route
from permits_common.web.problems import JsonResponse, ProblemError

TOKENS = {"t-hotel": "agency:hotel", "t-ops": "ops"}


def _app() -> FastAPI:
    app = create_app(
        service="fast-path-test",
        title="t",
        description="d",
        settings=CommonSettings(tokens=TOKENS),
        checks={},
    )

    async def declared(
        principal: Annotated[Principal, Depends(require("agency"))],
        word: Annotated[str, Query(min_length=1, max_length=5)],
    ) -> JsonResponse:
        return JsonResponse({"word": word, "by": "declared", "role": principal.role})

    async def fast(scope: Scope) -> JsonResponse | None:
        principal = principal_of(scope)
        query = scope["query_string"]
        if principal is None or principal.kind != "agency":
            return None
        if not query.startswith(b"word=") or not 5 < len(query) <= 10:
            return None
        if query == b"word=boom":
            raise ProblemError(409, "conflict", "Conflict", "raised on the fast path")
        if query == b"word=bug":
            raise RuntimeError("a bug on the fast path")
        return JsonResponse({"word": query[5:].decode(), "by": "fast", "role": principal.role})

    add_fast_path_route(app, "/words", declared, fast, methods=["GET"], summary="A word")
    return app


async def _get(
    app: FastAPI, query: str, token: str | None = None, path: str = "/words"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(f"{path}?{query}", headers=headers)


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "permits_http_request_seconds_count",
        {"service": "fast-path-test", "route": route, "method": "GET", "status": status},
    )
    return value or 0.0


async def test_the_usual_request_takes_the_fast_path() -> None:
    answer = await _get(_app(), "word=abc", "t-hotel")
    assert answer.status_code == 200
    assert answer.json() == {"word": "abc", "by": "fast", "role": "agency:hotel"}
    assert answer.headers["x-request-id"]


async def test_declined_requests_get_the_declared_routes_answers() -> None:
    app = _app()
    unusual = await _get(app, "other=1&word=abc", "t-hotel")
    assert unusual.json() == {"word": "abc", "by": "declared", "role": "agency:hotel"}
    invalid = await _get(app, "word=", "t-hotel")
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["errors"][0]["field"] == "word"
    assert (await _get(app, "word=abc")).status_code == 401
    wrong_role = await _get(app, "word=abc", "t-ops")
    assert wrong_role.status_code == 403
    assert wrong_role.json()["code"] == "forbidden"


async def test_a_problem_raised_on_the_fast_path_is_a_problem_document() -> None:
    answer = await _get(_app(), "word=boom", "t-hotel")
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "raised on the fast path"


async def test_other_methods_are_not_offered_to_the_fast_path() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/words?word=abc", headers={"Authorization": "Bearer t-hotel"})
    assert answer.status_code == 405


def test_the_declaration_is_the_openapi_contract() -> None:
    operation = _app().openapi()["paths"]["/words"]["get"]
    assert operation["summary"] == "A word"
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("word", "query", True)
    ]


async def test_fast_answers_are_observed_under_the_routes_template() -> None:
    before = _count("/words", "2xx")
    answer = await _get(_app(), "word=abc", "t-hotel")
    assert answer.json()["by"] == "fast"
    assert _count("/words", "2xx") == before + 1
    assert answer.headers["x-request-id"]


async def test_only_the_exact_path_is_offered_to_the_fast_path() -> None:
    answer = await _get(_app(), "word=abc", "t-hotel", path="/words/")
    assert answer.status_code == 307  # FastAPI's redirect to the declared path, as before
    assert answer.headers["location"] == "http://t/words?word=abc"


async def test_an_error_on_the_fast_path_is_the_shared_500() -> None:
    before = _count("/words", "5xx")
    answer = await _get(_app(), "word=bug", "t-hotel")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "internal_error"
    assert _count("/words", "5xx") == before + 1
