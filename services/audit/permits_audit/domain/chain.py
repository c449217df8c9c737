"""The hash chain that makes the trail tamper-evident.

Each entry carries the SHA-256 of the entry before it and of its own content, so changing,
removing or reordering any entry breaks every hash from there on. There is one chain per
partition of the audit topic: a partition has one writer at a time (its consumer), so its
chain grows without coordination between replicas, and its order is the topic's order.
Retention removes the oldest entries of a chain and keeps the last removed entry's hash as the
chain's anchor, so what is left still verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
"""The `prev_hash` of a chain's first entry."""

CONTENT_FIELDS = (
    "event_id",
    "at",
    "actor",
    "service",
    "action",
    "subject",
    "outcome",
    "point",
    "agency",
    "purpose",
)
"""What an entry's own hash covers: everything the trail says about the access."""


def entry_id(chain: int, seq: int) -> str:
    """A sortable id per position, so the next position of a chain is a primary-key lookup."""
    return f"{chain:03d}:{seq:012d}"


def content_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a stored entry (absent optional fields count as null)."""
    return {name: entry.get(name) for name in CONTENT_FIELDS}


def entry_hash(previous_hash: str, content: Mapping[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's canonical JSON."""
    canonical = orjson.dumps(content_of(content), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(previous_hash.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry of a chain: its position, hash and the topic offset it came from."""

    chain: int
    seq: int = 0
    hash: str = GENESIS
    offset: int = -1


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the kept part of a chain starts: the last removed entry (or the genesis)."""

    seq: int = 0
    hash: str = GENESIS


def link(
    head: ChainHead, contents: Iterable[tuple[int, Mapping[str, Any]]]
) -> tuple[list[dict[str, Any]], ChainHead]:
    """Chain `(offset, content)` pairs after `head`: the documents to store and the new head."""
    docs: list[dict[str, Any]] = []
    seq, previous, offset = head.seq, head.hash, head.offset
    for offset, content in contents:
        seq += 1
        own = entry_hash(previous, content)
        docs.append(
            {
                "_id": entry_id(head.chain, seq),
                "chain": head.chain,
                "seq": seq,
                "offset": offset,
                **content_of(content),
                "prev_hash": previous,
                "hash": own,
            }
        )
        previous = own
    return docs, ChainHead(head.chain, seq, previous, offset)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first entry whose hash does not follow from the one before, and why."""

    chain: int
    seq: int
    entry_id: str
    reason: str


@dataclass
class ChainCheck:
    """Walks one chain in order, from its anchor to its head."""

    chain: int
    anchor: Anchor
    entries: int = 0
    broken: ChainBreak | None = None

    def __post_init__(self) -> None:
        self._expected = self.anchor.seq + 1
        self._previous = self.anchor.hash

    def feed(self, entry: Mapping[str, Any]) -> bool:
        """Check the next stored entry; False once the chain is broken (stop feeding)."""
        seq = int(entry["seq"])
        if seq <= self.anchor.seq:
            return True
        self.entries += 1
        if seq != self._expected:
            return self._break(self._expected, f"entry {self._expected} is missing")
        if entry.get("prev_hash") != self._previous:
            return self._break(seq, "prev_hash does not match the entry before")
        if entry_hash(self._previous, entry) != entry.get("hash"):
            return self._break(seq, "content does not match its hash")
        self._previous = str(entry["hash"])
        self._expected += 1
        return True

    def finish(self, head: ChainHead | None) -> ChainBreak | None:
        """The recorded head must be the last entry seen: otherwise entries were removed."""
        if self.broken is not None or head is None:
            return self.broken
        if head.seq >= self._expected:
            self._break(self._expected, f"entries {self._expected}..{head.seq} are missing")
        elif head.seq == self._expected - 1 > self.anchor.seq and head.hash != self._previous:
            self._break(head.seq, "the last entry does not match the recorded head")
        return self.broken

    def _break(self, seq: int, reason: str) -> bool:
        self.broken = ChainBreak(self.chain, seq, entry_id(self.chain, seq), reason)
        return False
