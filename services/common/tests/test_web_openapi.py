"""The OpenAPI document of an app made by create_app states what the shared pipeline answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.testclient import TestClient
from pydantic import BaseModel

from permits_common.settings import CommonSettings, development_tokens
from permits_common.web.app import create_app
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import NO_CONTROL_CHARACTERS, WholeNumber
from permits_common.web.openapi import problem_responses

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Thing(BaseModel):
    name: str


class Change(BaseModel):
    days: WholeNumber


def _app() -> Any:
    async def always() -> bool:
        return True

    app = create_app(
        service="sample",
        title="sample",
        description="sample",
        settings=CommonSettings(tokens=development_tokens()),
        checks={"store": always},
    )
    router = APIRouter(prefix="/api/v1")

    @router.get("/things/public")
    async def public() -> list[Thing]:
        return [Thing(name="a")]

    @router.post("/things/{name}", responses=problem_responses(404, s404="No such thing"))
    async def change(
        name: Annotated[str, Path(pattern=NO_CONTROL_CHARACTERS)],
        body: Change,
        _principal: Annotated[Principal, Depends(require("ops"))],
    ) -> Thing:
        return Thing(name=name * body.days)

    app.include_router(router)
    return app


def test_errors_are_problems_and_tokens_are_declared() -> None:
    document = TestClient(_app()).get("/openapi.json").json()
    changed = document["paths"]["/api/v1/things/{name}"]["post"]
    assert changed["security"] == [{"bearerToken": []}]
    assert sorted(changed["responses"]) == ["200", "400", "401", "403", "404", "422", "503"]
    for status in ("400", "401", "403", "404", "422", "503"):
        assert changed["responses"][status]["content"] == PROBLEM
    assert changed["responses"]["404"]["description"] == "No such thing"
    assert "Retry-After" in changed["responses"]["503"]["headers"]
    ok = changed["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Thing"}
    public = document["paths"]["/api/v1/things/public"]["get"]
    assert "security" not in public
    assert sorted(public["responses"]) == ["200", "503"]
    assert document["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["paths"]["/healthz"]["get"]["responses"]["200"]["content"] != {}


def test_the_inputs_are_as_strict_as_the_document() -> None:
    client = TestClient(_app())
    ops = {"Authorization": "Bearer dev-ops"}
    assert client.post("/api/v1/things/a", json={"days": 2.0}, headers=ops).json() == {"name": "aa"}
    refused = client.post("/api/v1/things/a", json={"days": True}, headers=ops)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    control = client.post("/api/v1/things/a%00", json={"days": 1}, headers=ops)
    assert control.status_code == 422
