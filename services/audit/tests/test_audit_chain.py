"""The hash chain on its own: linking, and every kind of tampering the check must catch."""

from __future__ import annotations

import itertools
from typing import Any

from permits_audit.domain.chain import (
    GENESIS,
    Anchor,
    ChainCheck,
    ChainHead,
    entry_hash,
    link,
)


def contents(count: int, start: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [
        (
            offset,
            {
                "event_id": f"e{offset}",
                "at": f"2026-11-29T10:00:{offset % 60:02d}Z",
                "actor": {"id": "tok-1", "role": "clerk:LIXIA"},
                "service": "intake",
                "action": "application.read",
                "subject": f"app-{offset % 3}",
                "outcome": "ok",
                "point": "LIXIA",
            },
        )
        for offset in range(start, start + count)
    ]


def check(docs: list[dict[str, Any]], head: ChainHead, anchor: Anchor | None = None) -> Any:
    walker = ChainCheck(0, anchor or Anchor())
    for doc in docs:
        if not walker.feed(doc):
            break
    return walker.finish(head)


def test_a_linked_chain_is_intact_and_continues_across_batches() -> None:
    first, head = link(ChainHead(0), contents(5))
    second, head = link(head, contents(5, start=5))
    docs = first + second
    assert docs[0]["prev_hash"] == GENESIS
    assert [doc["seq"] for doc in docs] == list(range(1, 11))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(docs))
    assert head.seq == 10
    assert head.offset == 9
    assert check(docs, head) is None


def test_changed_content_is_reported_at_that_entry() -> None:
    docs, head = link(ChainHead(0), contents(6))
    docs[3] = {**docs[3], "outcome": "denied"}
    broken = check(docs, head)
    assert broken is not None
    assert broken.seq == 4
    assert "content" in broken.reason


def test_a_rehashed_entry_still_breaks_the_next_one() -> None:
    docs, head = link(ChainHead(0), contents(6))
    forged = {**docs[2], "subject": "someone-else"}
    forged["hash"] = entry_hash(forged["prev_hash"], forged)
    docs[2] = forged
    broken = check(docs, head)
    assert broken is not None
    assert broken.seq == 4
    assert "prev_hash" in broken.reason


def test_removed_entries_are_reported_in_the_middle_and_at_the_end() -> None:
    docs, head = link(ChainHead(0), contents(6))
    middle = check(docs[:2] + docs[3:], head)
    assert middle is not None
    assert middle.seq == 3
    end = check(docs[:-1], head)
    assert end is not None
    assert end.seq == 6
    assert "missing" in end.reason


def test_entries_behind_the_retention_anchor_are_not_needed() -> None:
    docs, head = link(ChainHead(0), contents(8))
    anchor = Anchor(docs[2]["seq"], docs[2]["hash"])
    assert check(docs[3:], head, anchor) is None
    assert check(docs, head, anchor) is None
    broken = check(docs[4:], head, anchor)
    assert broken is not None
    assert broken.seq == 4
