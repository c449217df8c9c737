"""Card views of issued cards written in bulk without reading them first, on the real store:
a later issue already shown is never replaced by an earlier one, and a holder's card numbers
accumulate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from pymongo import AsyncMongoClient

from permits_common.domain.card import HolderStatus
from permits_common.mongo import Document
from permits_intake.adapters.store import IntakeStore
from permits_intake.domain.cards import CardView

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def store(infrastructure: dict[str, str]) -> AsyncIterator[IntakeStore]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infrastructure["PERMITS_MONGO_URL"])
    name = f"permits_test_{uuid.uuid4().hex[:10]}"
    yield IntakeStore(client[name])
    await client.drop_database(name)
    await client.close()


def view(number: str, issue_count: int, holder: str) -> CardView:
    return CardView(
        number=number,
        issue_count=issue_count,
        status=HolderStatus.ACTIVE,
        holder=holder,
        valid_from=date(2026, 3, 20),
        valid_until=date(2031, 3, 20),
        issuing_authority="济南市公安局历下分局",
        application_id=f"app-{number}-{issue_count}",
    )


async def test_issued_cards_are_saved_in_bulk_and_never_go_back_an_issue(
    store: IntakeStore,
) -> None:
    await store.save_issued_cards([view("N1", 2, "H1"), view("N2", 1, "H1")])
    await store.save_issued_cards([view("N1", 1, "H1"), view("N3", 1, "H2"), view("N2", 1, "H1")])
    await store.save_issued_cards([view("N3", 2, "H2")])

    first, second, third = [await store.card(n) for n in ("N1", "N2", "N3")]
    assert first == view("N1", 2, "H1"), "the earlier issue, seen later, left the view alone"
    assert second == view("N2", 1, "H1"), "a repeat is the same view"
    assert third == view("N3", 2, "H2")
    held = await store.holder_cards.find_one({"_id": "H1"})
    assert held is not None
    assert sorted(held["cards"]) == ["N1", "N2"]
    assert await store.active_card_of("H2") == view("N3", 2, "H2")
