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
