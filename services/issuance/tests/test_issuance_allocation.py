"""Two issuance runtimes (two store clients, as two workers have) racing on the real store:
no permit number is given out twice, a redelivered event re-reads its decision, and an
exhausted birth date is refused with a clear code."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from issuance_harness import accepted, free_port
from pymongo import AsyncMongoClient, monitoring

from permits_common.domain import permit_number
from permits_common.domain.regions import Region, Sex
from permits_common.domain.travel_permit import base_number
from permits_common.events.models import ApplicationExtensionGranted
from permits_common.mongo import Document
from permits_issuance.adapters.store import (
    PEOPLE_SEEN_MIGRATION,
    STARTED_TOGETHER,
    IssuanceStore,
    day_of,
    delete_together,
)
from permits_issuance.config import IssuanceSettings
from permits_issuance.domain.numbering import candidate, counter_key
from permits_issuance.runtime import IssuanceRuntime
from permits_issuance.service.approval import APPROVED, REJECTED, ApprovalService
from permits_issuance.service.deadlines import ReadyCard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
async def two_workers(infrastructure: dict[str, str]) -> AsyncIterator[list[IssuanceRuntime]]:
    """Two runtimes on one database; the production centre is unreachable (orders wait)."""
    settings = IssuanceSettings(
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        mongo_url=infrastructure["PERMITS_MONGO_URL"],
        mongo_database=f"permits_test_{uuid.uuid4().hex[:10]}",
        production_centre_url=f"http://127.0.0.1:{free_port()}",
        production_request_timeout_seconds=0.5,
    )
    runtimes = [IssuanceRuntime(settings), IssuanceRuntime(settings)]
    for runtime in runtimes:
        await runtime.ensure_started()
    yield runtimes
    await runtimes[0].client.drop_database(settings.mongo_database)
    for runtime in runtimes:
        await runtime.stop()


async def test_concurrent_allocation_never_repeats_a_number(
    two_workers: list[IssuanceRuntime],
) -> None:
    birth = date(1985, 6, 15)
    events = [accepted(f"isstest-alloc-{uuid.uuid4().hex}", birth_date=birth) for _ in range(24)]
    records = await asyncio.gather(
        *(two_workers[i % 2].approval.handle_accepted(event) for i, event in enumerate(events))
    )
    numbers = [record["card_number"] for record in records]
    assert all(record["outcome"] == APPROVED for record in records)
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        parsed = permit_number.parse(number)
        assert parsed.birth_date == birth
        assert parsed.sequence % 2 == 1


async def test_redelivery_and_a_racing_worker_get_the_same_number(
    two_workers: list[IssuanceRuntime],
) -> None:
    event = accepted(f"isstest-redeliver-{uuid.uuid4().hex}", sex="F")
    first, second = await asyncio.gather(
        two_workers[0].approval.handle_accepted(event),
        two_workers[1].approval.handle_accepted(event),
    )
    again = await two_workers[0].approval.handle_accepted(event)
    assert first["card_number"] == second["card_number"] == again["card_number"]
    assert int(first["card_number"][14:17]) % 2 == 0
    orders = await two_workers[0].store.orders.count_documents(
        {"application_id": event.application_id}
    )
    assert orders == 1


async def test_exhausted_sequences_are_refused(two_workers: list[IssuanceRuntime]) -> None:
    birth = date(1977, 7, 7)
    store = two_workers[0].store
    await store.counters.insert_one({"_id": counter_key(Region.HK, birth, Sex.FEMALE), "next": 498})
    await store.claim_number(
        candidate(Region.HK, birth, Sex.FEMALE, 0).value, "an earlier application", NOW
    )
    last = await two_workers[0].approval.handle_accepted(
        accepted(f"isstest-last-{uuid.uuid4().hex}", birth_date=birth, sex="F")
    )
    assert last["card_number"][14:17] == "998"
    refused = await two_workers[1].approval.handle_accepted(
        accepted(f"isstest-none-{uuid.uuid4().hex}", birth_date=birth, sex="F")
    )
    assert refused["outcome"] == REJECTED
    assert refused["code"] == "sequence_exhausted"


async def test_one_open_application_per_person(two_workers: list[IssuanceRuntime]) -> None:
    permit = f"H{uuid.uuid4().int % 10**8:08d}"
    events = [
        accepted(f"isstest-dup-{uuid.uuid4().hex}", travel_permit_number=permit) for _ in range(2)
    ]
    records = await asyncio.gather(
        two_workers[0].approval.handle_accepted(events[0]),
        two_workers[1].approval.handle_accepted(events[1]),
    )
    outcomes = sorted(record["outcome"] for record in records)
    assert outcomes == [APPROVED, REJECTED]
    refused = next(record for record in records if record["outcome"] == REJECTED)
    assert refused["code"] == "duplicate_open_application"


async def test_a_batch_decided_together_ends_as_one_by_one_and_a_repeat_changes_nothing(
    two_workers: list[IssuanceRuntime],
) -> None:
    birth = date(1986, 2, 3)
    taken_permit = f"H{uuid.uuid4().int % 10**8:08d}"
    held = accepted(f"isstest-held-{uuid.uuid4().hex}", travel_permit_number=taken_permit)
    await two_workers[1].approval.handle_accepted(held)
    batch = [accepted(f"isstest-batch-{uuid.uuid4().hex}", birth_date=birth) for _ in range(6)]
    batch.append(accepted(f"isstest-busy-{uuid.uuid4().hex}", travel_permit_number=taken_permit))
    store = two_workers[0].store

    racing = asyncio.gather(*(two_workers[1].approval.handle_accepted(e) for e in batch[:3]))
    await asyncio.gather(two_workers[0].approval.handle_fresh_batch(batch), racing)
    decided: dict[str, Any] = {}
    for event in batch:
        record = await store.issuances.find_one({"_id": event.application_id})
        assert record is not None, "every application of the batch is decided"
        decided[event.application_id] = record
    await two_workers[0].approval.handle_fresh_batch(batch)
    again = [await two_workers[1].approval.handle_accepted(e) for e in batch]

    numbers = [decided[e.application_id]["card_number"] for e in batch[:6]]
    assert len(set(numbers)) == 6
    assert all(permit_number.parse(n).birth_date == birth for n in numbers)
    assert [r["card_number"] for r in again[:6]] == numbers, "the same decision every time"
    assert again[6]["outcome"] == REJECTED
    assert again[6]["code"] == "duplicate_open_application"
    refused_deadline = await store.deadline(batch[6].application_id)
    assert refused_deadline is not None
    assert (refused_deadline["state"], refused_deadline["open"]) == ("closed", False)
    assert await store.deadlines.find_one({"_id": batch[6].application_id}) is None
    claim = await store.person_claims.find_one({"_id": base_number(taken_permit)})
    assert claim is not None
    assert claim["application_id"] == held.application_id, "the refusal keeps the holder's"
    for event in batch[:6]:
        assert await store.orders.count_documents({"application_id": event.application_id}) == 1
        claims = await store.permit_numbers.count_documents(
            {"_id": decided[event.application_id]["card_number"]}
        )
        assert claims == 1


async def test_ready_callbacks_together_issue_each_card_once(
    two_workers: list[IssuanceRuntime],
) -> None:
    worker = two_workers[0]
    batch = [accepted(f"isstest-ready-{uuid.uuid4().hex}") for _ in range(5)]
    await worker.approval.handle_fresh_batch(batch)
    store = worker.store
    orders = [await store.orders.find_one({"application_id": e.application_id}) for e in batch]
    assert all(order is not None for order in orders)
    refs = [str(order["_id"]) for order in orders if order is not None]
    assert not any("decision" in order for order in orders if order is not None), "stored once"

    # The worker that placed them holds their decisions; the other reads them.
    await asyncio.gather(
        *(worker.production.callback(ref, 1, "ready", None) for ref in refs[:3]),
        *(two_workers[1].production.callback(ref, 1, "ready", None) for ref in refs[3:]),
    )
    await asyncio.gather(*(two_workers[1].production.callback(r, 1, "ready", None) for r in refs))

    for event, ref in zip(batch, refs, strict=True):
        assert await store.completions.count_documents({"_id": ref}) == 1
        assert await store.order_schedule.count_documents({"_id": ref}) == 0
        assert (
            await store.person_claims.count_documents({"application_id": event.application_id}) == 0
        )
        holder = await store.holders.find_one({"application_id": event.application_id})
        assert holder is not None
        assert holder["status"] == "active"


async def test_cards_ready_together_move_their_deadlines_out_by_batch_and_late_ones_alone(
    two_workers: list[IssuanceRuntime],
) -> None:
    deadlines, store = two_workers[0].deadlines, two_workers[0].store
    accepted_on = date(2026, 3, 2)
    first = [f"isstest-dl-{uuid.uuid4().hex}" for _ in range(3)]
    second = [f"isstest-dl-{uuid.uuid4().hex}" for _ in range(2)]
    alone, late, unknown = (f"isstest-dl-{uuid.uuid4().hex}" for _ in range(3))
    started = {
        **await deadlines.start_clocks([(a, "LIXIA", accepted_on) for a in first]),
        **await deadlines.start_clocks([(a, "LIXIA", accepted_on) for a in second]),
        alone: await deadlines.start_clock(alone, "LIXIA", accepted_on),
        late: await deadlines.start_clock(late, "LIXIA", accepted_on),
    }
    tokens = {str(started[a][STARTED_TOGETHER]) for a in first + second}
    assert len(tokens) == 2, "one token per batch of acceptances"
    in_time = date(2026, 3, 5)
    after_due = day_of(started[late]["due_date"]) + timedelta(days=7)
    cards = [ReadyCard(a, in_time, True, started[a]) for a in [*first, *second, alone]]
    cards.append(ReadyCard(late, after_due, True, started[late]))
    cards.append(ReadyCard(unknown, in_time, True, None))

    await deadlines.cards_ready(cards)
    await deadlines.cards_ready(cards)

    for application_id in [*first, *second, alone]:
        assert await store.deadlines.find_one({"_id": application_id}) is None, "moved out"
        doc = await store.deadline(application_id)
        assert doc is not None
        assert (doc["state"], doc["open"], doc["ready_on"]) == ("met", False, "2026-03-05")
        assert doc["due_date"] == started[application_id]["due_date"]
    late_doc = await store.deadline(late)
    assert late_doc is not None
    assert (late_doc["state"], late_doc["open"]) == ("breached", False)
    assert await store.deadlines.find_one({"_id": late}) is None
    assert await store.deadline(unknown) is None

    # A redelivered acceptance of a closed deadline gets the closed one: no clock again.
    again = await deadlines.start_clock(alone, "LIXIA", accepted_on, redelivered=True)
    assert (again["state"], again["open"]) == ("met", False)
    assert await store.deadlines.find_one({"_id": alone}) is None
    # An extension asked after the card was ready is refused, as for any closed deadline.
    extension = ApplicationExtensionGranted(
        application_id=alone,
        acceptance_point="LIXIA",
        working_days=3,
        total_working_days=3,
        reason="交通不便",
        granted_at=datetime.now(UTC),
    )
    assert await two_workers[0].extensions.grant(f"grant-{alone}", extension) is False


async def test_what_was_written_together_is_deleted_together_and_nothing_else(
    two_workers: list[IssuanceRuntime],
) -> None:
    """Claims of one batch token leave with one delete led by the token; a claim of the same
    token that was not named stays, and a named claim written without the token (or under
    another application) is still deleted exactly as named."""
    store = two_workers[0].store
    token = uuid.uuid4().hex
    bases = [f"H{uuid.uuid4().hex[:8]}" for _ in range(4)]
    holding = await store.claim_persons(
        [(base, f"app-{base}", token) for base in bases[:3]] + [(bases[3], "app-old", None)]
    )
    assert holding == {f"app-{base}" for base in bases[:3]} | {"app-old"}
    await delete_together(
        store.person_claims,
        [(token, {"_id": base, "application_id": f"app-{base}"}) for base in bases[:2]]
        + [(token, {"_id": bases[3], "application_id": "app-old"})],
    )
    left = {doc["_id"]: doc async for doc in store.person_claims.find({"_id": {"$in": bases}})}
    assert set(left) == {bases[2]}
    assert left[bases[2]][STARTED_TOGETHER] == token
    await delete_together(
        store.person_claims,
        [
            (token, {"_id": bases[2], "application_id": "someone-else"}),
            (token, {"_id": bases[2], "application_id": "another"}),
        ],
    )
    assert await store.person_claims.find_one({"_id": bases[2]}) is not None


class RegisterLookups(monitoring.CommandListener):
    """The filters of the `find` commands a client sends to the register (`holders`)."""

    def __init__(self) -> None:
        self.filters: list[Any] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "holders":
            self.filters.append(event.command.get("filter"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


async def issue_card(worker: IssuanceRuntime, permit: str) -> None:
    """Decide a first application of this person and have its card made, as the service does."""
    event = accepted(f"isstest-holder-{uuid.uuid4().hex}", travel_permit_number=permit)
    await worker.approval.handle_fresh_batch([event])
    order = await worker.store.orders.find_one({"application_id": event.application_id})
    assert order is not None
    await worker.production.callback(str(order["_id"]), 1, "ready", None)
    assert await worker.store.holder(base_number(permit)) is not None


async def test_a_batch_looks_up_the_register_only_for_people_seen_before(
    two_workers: list[IssuanceRuntime],
) -> None:
    worker = two_workers[0]
    permit = f"H{uuid.uuid4().int % 10**8:08d}"
    await issue_card(worker, permit)
    lookups = RegisterLookups()
    settings = worker.settings
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, event_listeners=[lookups]
    )
    watched = ApprovalService(
        IssuanceStore(client[settings.mongo_database]),
        worker.publisher,
        worker.clock,
        worker.deadlines,
        worker.production,
    )
    holder_again = accepted(f"isstest-again-{uuid.uuid4().hex}", travel_permit_number=permit)
    newcomers = [accepted(f"isstest-new-{uuid.uuid4().hex}") for _ in range(4)]
    try:
        await watched.handle_fresh_batch([holder_again, *newcomers])
    finally:
        await client.close()

    store = worker.store
    refused = await store.issuances.find_one({"_id": holder_again.application_id})
    assert refused is not None
    assert refused["outcome"] == REJECTED
    assert "already holds a valid card" in refused["message"]
    for event in newcomers:
        record = await store.issuances.find_one({"_id": event.application_id})
        assert record is not None
        assert record["outcome"] == APPROVED
    assert lookups.filters == [{"_id": base_number(permit)}], "only the holder is looked up"


async def test_register_entries_written_before_the_markers_are_marked_once_at_start(
    two_workers: list[IssuanceRuntime],
) -> None:
    store = two_workers[0].store
    permit = f"H{uuid.uuid4().int % 10**8:08d}"
    await issue_card(two_workers[0], permit)
    await store.people_seen.delete_many({})
    await store.migrations.delete_many({})

    await store.ensure_indexes()

    assert await store.migrations.count_documents({"_id": PEOPLE_SEEN_MIGRATION}) == 1
    again = accepted(f"isstest-older-{uuid.uuid4().hex}", travel_permit_number=permit)
    await two_workers[1].approval.handle_fresh_batch([again])
    refused = await store.issuances.find_one({"_id": again.application_id})
    assert refused is not None
    assert refused["outcome"] == REJECTED
