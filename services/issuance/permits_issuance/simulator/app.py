"""The production-centre simulator: takes signed orders, calls back later with the outcome.

Failures are configurable so the issuance service's retries can be exercised for real:
`failure_rate` answers orders with 503, `callback_failure_rate` calls back with `failed`, and
`POST /api/v1/control` arms "fail the next N orders / callbacks" or "never call back for the
next N". Development and test only; it binds 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from permits_common.http_client import PartnerClient, PartnerUnreachableError
from permits_common.logs import get_logger
from permits_issuance.domain.production import SIGNATURE_HEADER, sign, signature_matches

log = get_logger("simulator")


class SimulatorSettings(BaseSettings):
    """`PERMITS_PRODUCTION_SIMULATOR_*`; the secret is the one issuance uses."""

    model_config = SettingsConfigDict(env_prefix="PERMITS_PRODUCTION_SIMULATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8010, ge=0, le=65535)
    delay_seconds: float = Field(default=2.0, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    callback_failure_rate: float = Field(default=0.0, ge=0, le=1)


class SecretSettings(BaseSettings):
    """The HMAC secret shared with issuance (`PERMITS_PRODUCTION_CALLBACK_SECRET`)."""

    model_config = SettingsConfigDict(env_prefix="PERMITS_", extra="ignore")

    production_callback_secret: SecretStr = SecretStr("dev-production-callback-secret")


class Order(BaseModel):
    """An order as issuance sends it."""

    order_id: str = Field(min_length=1, max_length=100)
    attempt: int = Field(ge=1)
    card_number: str = Field(min_length=1, max_length=32)
    issue_count: int = Field(ge=1)
    callback_url: str = Field(min_length=1, max_length=500)


class Control(BaseModel):
    """Arm failures for the next orders or callbacks; fields left out stay as they are."""

    fail_next_orders: int | None = Field(default=None, ge=0)
    fail_next_callbacks: int | None = Field(default=None, ge=0)
    drop_next_callbacks: int | None = Field(default=None, ge=0)
    delay_seconds: float | None = Field(default=None, ge=0)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    callback_failure_rate: float | None = Field(default=None, ge=0, le=1)


@dataclass
class SimulatorState:
    """What the centre was asked and what it answered, for tests to inspect."""

    delay_seconds: float
    failure_rate: float
    callback_failure_rate: float
    fail_next_orders: int = 0
    fail_next_callbacks: int = 0
    drop_next_callbacks: int = 0
    orders: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def control(self) -> dict[str, Any]:
        """The current failure settings."""
        return {
            "fail_next_orders": self.fail_next_orders,
            "fail_next_callbacks": self.fail_next_callbacks,
            "drop_next_callbacks": self.drop_next_callbacks,
            "delay_seconds": self.delay_seconds,
            "failure_rate": self.failure_rate,
            "callback_failure_rate": self.callback_failure_rate,
        }

    def refuse_order(self) -> bool:
        """Whether this order is answered with 503."""
        if self.fail_next_orders > 0:
            self.fail_next_orders -= 1
            return True
        return random.random() < self.failure_rate

    def callback_outcome(self) -> str | None:
        """`ready`, `failed`, or None for "never call back"."""
        if self.drop_next_callbacks > 0:
            self.drop_next_callbacks -= 1
            return None
        if self.fail_next_callbacks > 0:
            self.fail_next_callbacks -= 1
            return "failed"
        return "failed" if random.random() < self.callback_failure_rate else "ready"


CALLBACKS_AT_ONCE = 50
"""Callbacks in flight at once, and the connections of the client's pool: a burst of orders
queues its callbacks for a slot instead of in the pool."""


def build_simulator(settings: SimulatorSettings, secret: bytes) -> FastAPI:
    """The simulator's HTTP app."""
    state = SimulatorState(
        settings.delay_seconds, settings.failure_rate, settings.callback_failure_rate
    )
    client = PartnerClient(timeout=5.0, in_flight=CALLBACKS_AT_ONCE)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for task in list(state.tasks):
                task.cancel()
            await client.close()

    app = FastAPI(title="Card production centre (simulator)", lifespan=lifespan)

    async def call_back(order: Order, outcome: str, delay: float) -> None:
        await asyncio.sleep(delay)
        body = orjson.dumps(
            {
                "order_id": order.order_id,
                "attempt": order.attempt,
                "status": outcome,
                "error": "simulated production failure" if outcome == "failed" else None,
            }
        )
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        for attempt in range(1, 6):
            try:
                answer = await client.post(order.callback_url, body, headers)
                if answer.status < 500:
                    state.orders[order.order_id][-1]["callback_status"] = answer.status
                    return
            except PartnerUnreachableError as exc:
                log.warning("callback failed", error=exc.cause_name, attempt=attempt)
            await asyncio.sleep(0.5 * attempt)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/orders", status_code=202)
    async def take_order(request: Request) -> Response:
        body = await request.body()
        if not signature_matches(secret, body, request.headers.get(SIGNATURE_HEADER)):
            return Response(status_code=401)
        try:
            order = Order.model_validate_json(body)
        except ValidationError:
            return Response(status_code=422)
        attempts = state.orders.setdefault(order.order_id, [])
        if state.refuse_order():
            attempts.append({"attempt": order.attempt, "answer": 503})
            return Response(status_code=503, headers={"Retry-After": "1"})
        outcome = state.callback_outcome()
        attempts.append({"attempt": order.attempt, "answer": 202, "outcome": outcome})
        if outcome is not None:
            task = asyncio.create_task(call_back(order, outcome, state.delay_seconds))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return Response(
            orjson.dumps({"order_id": order.order_id, "status": "accepted"}),
            status_code=202,
            media_type="application/json",
        )

    @app.get("/api/v1/orders/{order_id}")
    async def order_log(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id, "attempts": state.orders.get(order_id, [])}

    @app.post("/api/v1/control")
    async def control(change: Control) -> dict[str, Any]:
        for name, value in change.model_dump(exclude_none=True).items():
            setattr(state, name, value)
        return state.control()

    return app
