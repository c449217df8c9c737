"""The shared request pipeline of create_app: request ids, principals on the request, role
checks, problem documents for errors nothing else handled, and latency metrics by route."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from prometheus_client import REGISTRY

from permits_common.settings import CommonSettings
from permits_common.web.app import create_app
from permits_common.web.auth import Principal, require

TOKENS = {"t-ops": "ops", "t-hotel": "agency:hotel", "t-clerk": "clerk:LIXIA"}


def _app(service: str) -> FastAPI:
    app = create_app(
        service=service,
        title="t",
        description="d",
        settings=CommonSettings(tokens=TOKENS),
        checks={},
    )

    @app.get("/items/{item_id}")
    async def item(
        item_id: str,
        request: Request,
        principal: Annotated[Principal, Depends(require("agency", "ops"))],
    ) -> dict[str, Any]:
        state = request.scope["state"]
        return {
            "item": item_id,
            "role": principal.role,
            "state_principal": state["principal"].role,
            "request_id": state["request_id"],
        }

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    @app.get("/outage")
    async def outage() -> None:
        raise ConnectionError("store gone")

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
    )


def _count(service: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "permits_http_request_seconds_count",
        {"service": service, "route": route, "method": "GET", "status": status},
    )
    return value or 0.0


async def test_principal_and_request_id_are_on_the_request() -> None:
    async with _client(_app("mw-principal")) as client:
        answer = await client.get(
            "/items/42", headers={"Authorization": "Bearer t-hotel", "X-Request-ID": "abc-123"}
        )
    assert answer.status_code == 200
    assert answer.json() == {
        "item": "42",
        "role": "agency:hotel",
        "state_principal": "agency:hotel",
        "request_id": "abc-123",
    }
    assert answer.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("given", ["", "has spaces in it", "x" * 65])
async def test_a_missing_or_odd_request_id_is_replaced(given: str) -> None:
    headers = {"X-Request-ID": given} if given else {}
    async with _client(_app("mw-request-id")) as client:
        first = await client.get("/healthz", headers=headers)
        second = await client.get("/healthz", headers=headers)
    made = first.headers["x-request-id"]
    assert made != given
    assert len(made) == 24
    assert int(made, 16) >= 0
    assert second.headers["x-request-id"] != made


async def test_the_first_of_repeated_headers_counts() -> None:
    repeated = [
        ("X-Request-ID", "first-id"),
        ("Authorization", "Bearer t-ops"),
        ("X-Request-ID", "second-id"),
        ("Authorization", "Bearer t-hotel"),
    ]
    async with _client(_app("mw-repeated")) as client:
        answer = await client.get("/items/1", headers=repeated)
        odd_first = await client.get(
            "/healthz", headers=[("X-Request-ID", "not well formed"), ("X-Request-ID", "ok-id")]
        )
    assert answer.json()["request_id"] == "first-id"
    assert answer.json()["role"] == "ops"
    assert answer.headers.get_list("x-request-id") == ["first-id"]
    assert odd_first.headers["x-request-id"] not in {"ok-id", "not well formed"}


@pytest.mark.parametrize(
    ("authorization", "status", "title"),
    [
        (None, 401, "Authentication required"),
        ("Basic dC1vcHM=", 401, "Authentication required"),
        ("Bearer nope", 401, "Unknown token"),
        ("Bearer t-clerk", 403, "Forbidden"),
        ("bearer  t-ops ", 200, None),
    ],
)
async def test_roles_are_checked_on_the_route(
    authorization: str | None, status: int, title: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with _client(_app("mw-roles")) as client:
        answer = await client.get("/items/1", headers=headers)
    assert answer.status_code == status
    if title is not None:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == title
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_unhandled_errors_become_counted_problems() -> None:
    service = "mw-errors"
    before = _count(service, "/broken", "5xx"), _count(service, "/outage", "5xx")
    async with _client(_app(service)) as client:
        bug = await client.get("/broken", headers={"X-Request-ID": "req-1"})
        outage = await client.get("/outage")
    assert bug.status_code == 500
    assert bug.json()["code"] == "internal_error"
    assert bug.headers["content-type"] == "application/problem+json"
    assert bug.headers["x-request-id"] == "req-1"
    assert outage.status_code == 503
    assert outage.json()["code"] == "service_unavailable"
    assert outage.headers["retry-after"] == "5"
    assert _count(service, "/broken", "5xx") == before[0] + 1
    assert _count(service, "/outage", "5xx") == before[1] + 1


async def test_metrics_are_labelled_by_route_template_not_path() -> None:
    service = "mw-metrics"
    async with _client(_app(service)) as client:
        for item in ("a", "b", "c"):
            await client.get(f"/items/{item}", headers={"Authorization": "Bearer t-ops"})
        await client.get("/no/such/path")
    assert _count(service, "/items/{item_id}", "2xx") == 3
    assert _count(service, "unmatched", "4xx") == 1
    assert not any(
        sample.labels.get("route") == "/items/a"
        for metric in REGISTRY.collect()
        for sample in metric.samples
    )
