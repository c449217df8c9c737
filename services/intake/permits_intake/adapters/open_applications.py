"""Reads of the open applications for staff lists, apart from the store of the busy path.

These lists are read by people, a page at a time, so a filtered read is acceptable here: the
acceptance point is a top-level equality the store pushes down, and only applications still
holding their person's open-application lock are candidates. Each is then shown as its own
view shows it (stored fields folded with its steps), never with the applicant's details.
"""

from __future__ import annotations

import asyncio

from permits_common.domain.card import ApplicationStatus
from permits_common.mongo import Document
from permits_intake.adapters.store import VIEW_PROJECTION, IntakeStore

STEP_READS_AT_ONCE = 16
"""Open applications whose steps are read at the same time: a city's open list is thousands
long (a ready card stays open until collected), and one read after another made the operator's
overview take over 10 s on a busy machine."""


async def open_applications(store: IntakeStore, point: str | None = None) -> list[Document]:
    """Every open application, or those of one acceptance point, as their views show them:
    one read for the documents, then each one's steps, `STEP_READS_AT_ONCE` at a time."""
    query: Document = {"open_person": {"$exists": True}}
    if point is not None:
        query = {"acceptance_point": point, **query}
    docs = [
        doc async for doc in store.applications.find(query, VIEW_PROJECTION) if "refusal" not in doc
    ]
    at_once = asyncio.Semaphore(STEP_READS_AT_ONCE)

    async def shown(doc: Document) -> Document:
        async with at_once:
            record = await store.with_steps(doc)
        return record.shown()

    views = await asyncio.gather(*(shown(doc) for doc in docs))
    return [view for view in views if ApplicationStatus(view["status"]).is_open]
