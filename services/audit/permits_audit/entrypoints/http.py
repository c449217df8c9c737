"""HTTP API on port 8005: the trail of one subject, and the integrity check (ops only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from permits_audit.runtime import AuditRuntime
from permits_common.web.auth import Principal, require
from permits_common.web.inputs import NO_CONTROL_CHARACTERS
from permits_common.web.openapi import success
from permits_common.web.problems import JsonResponse


class EntryOut(BaseModel):
    """One access: who did what to which subject, and the entry's place in its hash chain."""

    at: Any
    actor: str
    service: str
    action: str
    subject: str
    outcome: str
    point: str | None = None
    agency: str | None = None
    purpose: str | None = None
    entry: str
    hash: str


class TrailOut(BaseModel):
    """Every access to one application or card, oldest first."""

    subject: str
    items: list[EntryOut]


class ChainBreakOut(BaseModel):
    """The first entry whose hash or position does not follow from the one before."""

    entry: str
    chain: int
    seq: int
    reason: str


class IntegrityOut(BaseModel):
    """How many entries were checked, and whether every chain is intact."""

    entries: int
    intact: bool
    first_broken: ChainBreakOut | None = None


def build_router(runtime: AuditRuntime) -> APIRouter:
    """Routes bound to the running service."""
    router = APIRouter(prefix="/api/v1", tags=["audit"])

    @router.get(
        "/audit",
        summary="Who accessed one application or card (ops)",
        response_model=None,
        responses=success(TrailOut, "The subject's entries"),
    )
    async def trail(
        _principal: Annotated[Principal, Depends(require("ops"))],
        subject: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> JsonResponse:
        items = await runtime.reader.for_subject(subject, limit)
        return JsonResponse({"subject": subject, "items": items})

    @router.get(
        "/audit/verify",
        summary="Check the hash chain of the whole trail (ops)",
        response_model=None,
        responses=success(IntegrityOut, "The result of the check"),
    )
    async def verify(
        _principal: Annotated[Principal, Depends(require("ops"))],
    ) -> dict[str, Any]:
        entries, broken = await runtime.reader.verify()
        if broken is None:
            return {"entries": entries, "intact": True}
        return {
            "entries": entries,
            "intact": False,
            "first_broken": {
                "entry": broken.entry_id,
                "chain": broken.chain,
                "seq": broken.seq,
                "reason": broken.reason,
            },
        }

    return router
