"""Reads of the open applications for staff lists, apart from the store of the busy path.

These lists are read by people, a page at a time, so a read per application is acceptable
here: the candidates are the applications holding their person's open-application claim (all of
them, or those of one acceptance point, an indexed equality), each then read by `_id` and shown
as its own view shows it (stored fields folded with its steps), never with the applicant's
details.
"""

from __future__ import annotations

import asyncio

from permits_common.domain.card import ApplicationStatus
from permits_common.mongo import Document
from permits_intake.adapters.store import IntakeStore

STEP_READS_AT_ONCE = 16
"""Open applications whose steps are read at the same time: a city's open list is thousands
long (a ready card stays open until collected), and one read after another made the operator's
overview take over 10 s on a busy machine."""


async def open_applications(store: IntakeStore, point: str | None = None) -> list[Document]:
    """Every open application, or those of one acceptance point, as their views show them:
    one read for the claims, then each application and its steps, `STEP_READS_AT_ONCE`
    applications at a time."""
    claims = await store.open_claims(point)
    at_once = asyncio.Semaphore(STEP_READS_AT_ONCE)

    async def shown(application_id: str) -> Document | None:
        async with at_once:
            record = await store.application(application_id)
        return record.shown() if record is not None else None

    views = await asyncio.gather(*(shown(claim.application_id) for claim in claims))
    return [
        view for view in views if view is not None and ApplicationStatus(view["status"]).is_open
    ]
