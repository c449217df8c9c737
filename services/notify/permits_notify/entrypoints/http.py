"""HTTP side of notify: the delivery log for operators, and the dev clock outside production."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, Field

from permits_common.events.topics import NOTIFICATIONS
from permits_common.kafka import kafka_reachable
from permits_common.mongo import ping
from permits_common.web.app import create_app
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import NO_CONTROL_CHARACTERS, WholeNumber
from permits_common.web.openapi import success
from permits_notify.adapters.store import NotifyStore, public_delivery
from permits_notify.config import NotifySettings
from permits_notify.service.notifier import NotificationService

Ops = Annotated[Principal, Depends(require("ops"))]


class DeliveryOut(BaseModel):
    """One message to an applicant: masked recipient, no content."""

    id: str
    application_id: str
    message_type: str
    channel: str
    template: str | None
    language: str | None
    recipient: str | None
    status: str
    attempts: int | None
    cause_event_id: str | None
    created_at: Any
    updated_at: Any
    sent_at: Any
    failed_at: Any
    next_attempt_at: Any
    deferred_reason: str | None
    error: str | None


class DeliveryLogOut(BaseModel):
    """Every message of one application."""

    application_id: str
    items: list[DeliveryOut]


class ClockMovedOut(BaseModel):
    """The clock after moving it, and what the pass it triggered did."""

    offset_days: int
    now: str
    reminders_fired: int
    deliveries_attempted: int


class ClockChange(BaseModel):
    """How far the service clock should run ahead of real time."""

    offset_days: WholeNumber = Field(ge=-36600, le=36600)


def create_http_app(
    settings: NotifySettings, store: NotifyStore, service: NotificationService
) -> FastAPI:
    """The FastAPI app served inside the Faust worker."""

    async def store_ready() -> bool:
        return await ping(store.database)

    async def kafka_ready() -> bool:
        return await kafka_reachable(settings)

    app = create_app(
        service="notify",
        title="Residence permits — notify",
        description=f"Messages to applicants; outcomes are published on `{NOTIFICATIONS}`.",
        settings=settings,
        checks={"kafka": kafka_ready, "store": store_ready},
    )
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/notifications",
        summary="Delivery log of one application (masked)",
        response_model=None,
        responses=success(DeliveryLogOut, "The application's messages"),
    )
    async def list_notifications(
        _principal: Ops,
        application_id: Annotated[
            str, Query(min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)
        ],
    ) -> dict[str, Any]:
        deliveries = await store.deliveries_for(application_id)
        return {
            "application_id": application_id,
            "items": [public_delivery(doc) for doc in deliveries],
        }

    if settings.env != "production":

        @router.put(
            "/dev/clock",
            summary="Move the service clock (not in production)",
            response_model=None,
            responses=success(ClockMovedOut, "The clock moved; due reminders and retries ran"),
        )
        async def move_clock(_principal: Ops, change: ClockChange) -> dict[str, Any]:
            service.clock.set_offset(timedelta(days=change.offset_days))
            report = await service.dispatch_due()
            return {
                "offset_days": change.offset_days,
                "now": service.clock.now().isoformat(),
                "reminders_fired": report.reminders,
                "deliveries_attempted": report.attempted,
            }

    app.include_router(router)
    return app
