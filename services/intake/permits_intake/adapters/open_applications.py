"""Reads of the open applications for staff lists, apart from the store of the busy path.

These lists are read by people, a page at a time, so a filtered read is acceptable here: the
acceptance point is a top-level equality the store pushes down, the open statuses are checked on
what it returns. Only the fields a list shows are read, never the applicant's details.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from permits_common.domain.card import ApplicationStatus
from permits_common.mongo import Document

_LIST_FIELDS = {
    "kind": 1,
    "acceptance_point": 1,
    "status": 1,
    "accepted_on": 1,
    "due_date": 1,
    "due_date_provisional": 1,
    "sla": 1,
    "ready_on": 1,
}
_OPEN = [status.value for status in ApplicationStatus if status.is_open]


async def open_applications(
    database: AsyncDatabase[Document], point: str | None = None
) -> list[Document]:
    """Every open application, or those of one acceptance point."""
    query: Document = {"status": {"$in": _OPEN}}
    if point is not None:
        query = {"acceptance_point": point, **query}
    cursor = database["applications"].find(query, _LIST_FIELDS)
    return [doc async for doc in cursor]
