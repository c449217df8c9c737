"""Every service's OpenAPI document says what its API really answers.

FastAPI documents a route's success answer and the validation errors it knows of; what the
shared pipeline adds is written in here once for every service: errors are RFC 9457 problem
documents (`application/problem+json`, schema `Problem`); a route behind a role check takes a
bearer token and may answer 401 and 403; a route with parameters or a body may answer 422 (and
400 for a body that is not text at all); every API route may answer 503 with Retry-After when
the store or the broker is unreachable. Routes declare what else they answer (404, 409, 429)
with `problem_responses`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict

from permits_common.web.auth import RoleCheck
from permits_common.web.problems import PROBLEM_CONTENT_TYPE

BEARER_SCHEME = "bearerToken"
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
STATUS_DESCRIPTIONS = {
    400: "The body is not JSON text",
    401: "No token, or an unknown one",
    403: "The token's role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Invalid request, or a rule it fails",
    429: "Too many requests; retry after Retry-After seconds",
    503: "The store or Kafka is unreachable; retry after Retry-After seconds",
}
_OPS_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class FieldError(BaseModel):
    """One field's problem."""

    model_config = ConfigDict(frozen=True)

    field: str
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details with the contract's stable `code`."""

    model_config = ConfigDict(frozen=True)

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route for the problems it answers besides the common ones;
    `descriptions` overrides the text of a status (keyed `s404`, `s409`, ...)."""
    return {
        status: {
            "description": descriptions.get(f"s{status}", STATUS_DESCRIPTIONS.get(status, "")),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def success(model: type[BaseModel], description: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting a 200 answer that a route builds itself (a dict):
    pair it with `response_model=None`, so FastAPI neither filters nor re-validates it."""
    return {200: {"model": model, "description": description}}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def token_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route behind a role check (`require`)."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        if any(isinstance(d.call, RoleCheck) for d in _dependants(context.dependant)):
            methods = context.methods or set()
            found.update((method.lower(), str(context.path_format)) for method in methods)
    return found


def _problem_answer(response: dict[str, Any], status: int) -> None:
    response.setdefault("description", STATUS_DESCRIPTIONS.get(status, ""))
    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA}}
    if status in (429, 503):
        response["headers"] = {**RETRY_AFTER, **response.get("headers", {})}


def complete(document: dict[str, Any], with_token: set[tuple[str, str]]) -> dict[str, Any]:
    """Add what the shared pipeline answers to a document FastAPI generated; `with_token` are
    the (method, path) operations behind a role check."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, operations in document.get("paths", {}).items():
        if path in _OPS_ROUTES:
            continue
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            added: list[int] = [503]
            if (method, path) in with_token:
                operation["security"] = [{BEARER_SCHEME: []}]
                added += [401, 403]
            if operation.get("parameters") or "requestBody" in operation:
                added.append(422)
            if "requestBody" in operation:
                added.append(400)
            for status in added:
                responses.setdefault(str(status), {})
            for key, response in responses.items():
                if key.isdigit() and int(key) >= 400:
                    _problem_answer(response, int(key))
    if with_token:
        components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "A token with one role: clerk, clerk:<POINT>, ops or agency:<key>",
        }
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at `/openapi.json` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(document, token_operations(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
