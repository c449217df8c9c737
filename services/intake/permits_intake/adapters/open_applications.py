"""Reads of the open applications for staff lists, apart from the store of the busy path.

These lists are read by people, a page at a time, so a filtered read is acceptable here: the
acceptance point is a top-level equality the store pushes down, and only applications still
holding their person's open-application lock are candidates. Each is then shown as its own
view shows it (stored fields folded with its steps), never with the applicant's details.
"""

from __future__ import annotations

from permits_common.domain.card import ApplicationStatus
from permits_common.mongo import Document
from permits_intake.adapters.store import IntakeStore


async def open_applications(store: IntakeStore, point: str | None = None) -> list[Document]:
    """Every open application, or those of one acceptance point, as their views show them."""
    query: Document = {"open_person": {"$exists": True}}
    if point is not None:
        query = {"acceptance_point": point, **query}
    ids = [doc["_id"] async for doc in store.applications.find(query, {"_id": 1})]
    shown: list[Document] = []
    for application_id in ids:
        record = await store.application(str(application_id))
        if record is None:
            continue
        view = record.shown()
        if ApplicationStatus(view["status"]).is_open:
            shown.append(view)
    return shown
