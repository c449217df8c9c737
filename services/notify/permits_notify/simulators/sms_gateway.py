"""An HTTP SMS gateway that records messages and fails on request.

API (the same shape `SmsGatewaySender` speaks):
- `POST /api/v1/messages` `{"to", "text", "reference"}` with `Authorization: Bearer <key>` and
  `Idempotency-Key` → 201 `{"id", "status": "delivered"}`; a repeated key answers the first
  result again and sends nothing; a malformed number → 400 `invalid_number`.
- `GET /api/v1/messages?to=` lists what was sent.
- `POST /api/v1/failures` `{"kind": "temporary"|"permanent", "count": N}` fails the next N
  messages (503 or 400); with `"number": "+852..."` only messages to that number (every one,
  or the next N when `count` is given); `DELETE /api/v1/failures` clears the rules.
"""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field, ValidationError

_NUMBER = re.compile(r"^\+?\d{6,15}$")


class OutgoingSms(BaseModel):
    """One message as the gateway receives it."""

    to: str = Field(max_length=32)
    text: str = Field(max_length=2000)
    reference: str | None = Field(default=None, max_length=300)


class FailureRule(BaseModel):
    """Fail the next `count` messages, or (the next `count` or all) messages to `number`."""

    kind: Literal["temporary", "permanent"]
    count: int | None = Field(default=None, ge=1, le=10_000)
    number: str | None = None


@dataclass
class GatewayState:
    """What the gateway has sent and which failures it still has to simulate."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[FailureRule] = field(default_factory=list)
    refused: int = 0

    def failure_for(self, number: str) -> FailureRule | None:
        """The rule that fails this message (rules for this number first), consuming one use
        of a counted rule."""
        matching = [r for r in self.rules if r.number == number] or [
            r for r in self.rules if r.number is None
        ]
        if not matching:
            return None
        rule = matching[0]
        if rule.count is not None:
            rule.count -= 1
            if rule.count <= 0:
                self.rules.remove(rule)
        return rule


_JSON = "application/json"


def _error(status: int, code: str) -> Response:
    return Response(orjson.dumps({"code": code}), status, media_type=_JSON)


def _answer(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), 201, media_type=_JSON)


def create_sms_gateway_app(api_key: str) -> FastAPI:
    """The simulator app; `app.state.gateway` holds its state for in-process tests."""
    app = FastAPI(title="SMS gateway (local simulator)")
    state = GatewayState()
    app.state.gateway = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def send(request: Request) -> Response:
        """`POST /api/v1/messages`, as a plain endpoint: FastAPI's parameter handling was half
        of the simulator's CPU per message, and the simulator runs on the services' machine."""
        try:
            sms = OutgoingSms.model_validate_json(await request.body())
        except ValidationError as exc:
            detail = [
                {**error, "loc": ["body", *error["loc"]]}
                for error in exc.errors(include_url=False, include_context=False)
            ]
            return Response(orjson.dumps({"detail": detail}), 422, media_type=_JSON)
        authorization = request.headers.get("authorization", "")
        if not hmac.compare_digest(authorization.encode(), f"Bearer {api_key}".encode()):
            return _error(401, "unauthorized")
        reference = request.headers.get("idempotency-key") or sms.reference
        if reference and reference in state.answered:
            return _answer({**state.answered[reference], "duplicate": True})
        rule = state.failure_for(sms.to)
        if rule is not None:
            state.refused += 1
            if rule.kind == "temporary":
                return _error(503, "temporarily_unavailable")
            return _error(400, "invalid_number")
        if not _NUMBER.match(sms.to):
            return _error(400, "invalid_number")
        answer = {"id": uuid.uuid4().hex, "status": "delivered"}
        state.messages.append(
            {
                **answer,
                "to": sms.to,
                "text": sms.text,
                "reference": reference,
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        if reference:
            state.answered[reference] = answer
        return _answer(answer)

    app.add_route("/api/v1/messages", send, methods=["POST"])

    @app.get("/api/v1/messages")
    async def list_messages(to: str | None = None) -> dict[str, Any]:
        items = [m for m in state.messages if to is None or m["to"] == to]
        return {"items": items, "refused": state.refused}

    @app.post("/api/v1/failures", status_code=201)
    async def add_failure(rule: FailureRule) -> dict[str, int]:
        if rule.count is None and rule.number is None:
            rule = FailureRule(kind=rule.kind, count=1)
        state.rules.append(rule)
        return {"rules": len(state.rules)}

    @app.delete("/api/v1/failures")
    async def clear_failures() -> dict[str, int]:
        state.rules.clear()
        return {"rules": 0}

    return app
