"""Production orders: stable ids, capped backoff, HMAC signatures, callbacks gathered."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from permits_common.mongo import Document
from permits_issuance.domain.production import order_id, retry_delay, sign, signature_matches
from permits_issuance.service.production import Gathering


def test_order_id_is_stable_per_application_and_issue() -> None:
    assert order_id("app-1", 1) == order_id("app-1", 1)
    assert order_id("app-1", 1) != order_id("app-1", 2)


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 2.0, 30.0) for n in (1, 2, 3, 4, 5, 60)] == [2, 4, 8, 16, 30, 30]
    with pytest.raises(ValueError, match="1-based"):
        retry_delay(0, 2.0, 30.0)


def test_signatures() -> None:
    body = b'{"order_id":"x"}'
    header = sign(b"secret", body)
    assert header.startswith("sha256=")
    assert signature_matches(b"secret", body, header)
    assert not signature_matches(b"other", body, header)
    assert not signature_matches(b"secret", body + b" ", header)
    assert not signature_matches(b"secret", body, None)


async def test_items_arriving_together_are_one_batch_and_a_bad_one_fails_alone() -> None:
    batches: list[list[str]] = []

    async def handle(items: Sequence[Document]) -> None:
        batches.append([str(item["_id"]) for item in items])
        if any(item["_id"] == "bad" for item in items):
            raise ValueError("refused")

    gathering = Gathering(handle, window_seconds=0.01)
    results = await asyncio.gather(
        *(gathering.add({"_id": name}) for name in ("a", "bad", "b")), return_exceptions=True
    )

    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], ValueError)
    assert batches == [["a", "bad", "b"], ["a"], ["bad"], ["b"]]
    await gathering.add({"_id": "later"})
    assert batches[-1] == ["later"]


async def test_the_batches_of_a_burst_run_side_by_side_and_late_items_open_a_new_window() -> None:
    running = 0
    most_at_once = 0
    handled: list[str] = []

    async def handle(items: Sequence[Document]) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.05)
        handled.extend(str(item["_id"]) for item in items)
        running -= 1

    gathering = Gathering(handle, window_seconds=0.01, limit=4)
    burst = [asyncio.create_task(gathering.add({"_id": f"b{i}"})) for i in range(12)]
    await asyncio.sleep(0.02)
    late = asyncio.create_task(gathering.add({"_id": "late"}))
    await asyncio.wait_for(asyncio.gather(*burst, late), timeout=1)

    assert most_at_once >= 3, "a burst's batches run side by side, not one after another"
    assert sorted(handled) == sorted([f"b{i}" for i in range(12)] + ["late"])


async def test_a_stopped_gathering_fails_its_waiting_callers() -> None:
    async def handle(_items: Sequence[Document]) -> None:
        await asyncio.sleep(10)

    gathering = Gathering(handle, window_seconds=5)
    caller = asyncio.create_task(gathering.add({"_id": "a"}))
    await asyncio.sleep(0.01)
    assert gathering._flush is not None
    gathering._flush.cancel()
    with pytest.raises(RuntimeError, match="stopped before"):
        await asyncio.wait_for(caller, timeout=1)
