"""Appending to the trail, reading it, checking it and pruning it.

Appending is exactly once without a lookup per entry: every entry stores the topic offset it
came from, the chain's head knows the last offset stored, and records at or below it are
skipped. A crash between storing a batch and committing the consumer offset therefore
redelivers records that are recognised by offset; a producer that sent one entry twice is
caught by the unique event id, and the rest of the batch is chained again without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from permits_audit.adapters.store import DuplicateEntryError, PositionTakenError, TrailStore
from permits_audit.domain.chain import Anchor, ChainBreak, ChainCheck, ChainHead, link
from permits_audit.service.metrics import CHAIN_ENTRIES, ENTRIES_STORED
from permits_common.events.envelope import Event
from permits_common.events.models import AuditAccess
from permits_common.mongo import Document

Record = tuple[int, Event[AuditAccess]]
"""A topic offset and the audit event read there."""


def content(event: Event[AuditAccess]) -> dict[str, Any]:
    """What the trail stores of one event (JSON values, so the hash is stable)."""
    data = event.data.model_dump(mode="json")
    return {
        "event_id": event.id,
        "at": data["at"],
        "actor": data["actor"],
        "service": data["service"],
        "action": data["action"],
        "subject": data["subject_id"],
        "outcome": data["outcome"],
        "point": data.get("point"),
        "agency": data.get("agency"),
        "purpose": data.get("purpose"),
    }


class TrailWriter:
    """Appends batches of one partition to that partition's chain."""

    def __init__(self, store: TrailStore) -> None:
        self._store = store
        self._heads: dict[int, ChainHead] = {}

    async def position(self, chain: int) -> int:
        """The next topic offset this chain needs (the consumer seeks there)."""
        head = await self._store.head(chain)
        self._heads[chain] = head
        return head.offset + 1

    def forget(self, chain: int) -> None:
        """The partition went to another consumer: its head must be read again if it returns."""
        self._heads.pop(chain, None)

    async def append(self, chain: int, records: Sequence[Record]) -> int:
        """Store the records not stored yet; returns how many were appended."""
        head = self._heads.get(chain) or await self._store.head(chain)
        pending = [(offset, content(event)) for offset, event in records if offset > head.offset]
        appended = 0
        while pending:
            docs, new_head = link(head, pending)
            try:
                await self._store.append(docs)
            except DuplicateEntryError as exc:
                stored = exc.index
                if stored:
                    head = _head_of(chain, docs[stored - 1])
                    await self._store.move_head(head)
                    appended += stored
                pending = pending[stored + 1 :]
                continue
            except PositionTakenError:
                head = await self._store.head(chain)
                pending = [(offset, item) for offset, item in pending if offset > head.offset]
                continue
            await self._store.move_head(new_head)
            head = new_head
            appended += len(docs)
            pending = []
        self._heads[chain] = head
        ENTRIES_STORED.inc(appended)
        return appended


def _head_of(chain: int, doc: Mapping[str, Any]) -> ChainHead:
    return ChainHead(chain, int(doc["seq"]), str(doc["hash"]), int(doc["offset"]))


def entry_view(doc: Document) -> dict[str, Any]:
    """An entry as the API shows it: no storage details beyond its position and hash."""
    view: dict[str, Any] = {
        "at": doc["at"],
        "actor": doc["actor"],
        "service": doc["service"],
        "action": doc["action"],
        "subject": doc["subject"],
        "outcome": doc["outcome"],
    }
    for optional in ("point", "agency", "purpose"):
        if doc.get(optional) is not None:
            view[optional] = doc[optional]
    view["entry"] = doc["_id"]
    view["hash"] = doc["hash"]
    return view


class TrailReader:
    """Answers for operators: an entry list per subject and the integrity check."""

    def __init__(self, store: TrailStore) -> None:
        self._store = store

    async def for_subject(self, subject: str, limit: int) -> list[dict[str, Any]]:
        """Every access to one application or card, oldest first."""
        return [entry_view(doc) for doc in await self._store.for_subject(subject, limit)]

    async def verify(self) -> tuple[int, ChainBreak | None]:
        """Walk every chain; the number of entries checked and the first break, if any."""
        total = 0
        for chain in await self._store.chain_ids():
            check = ChainCheck(chain, await self._store.anchor(chain))
            async for doc in self._store.walk(chain):
                if not check.feed(doc):
                    break
            broken = check.finish(await self._store.recorded_head(chain))
            total += check.entries
            CHAIN_ENTRIES.labels(str(chain)).set(check.entries)
            if broken is not None:
                return total, broken
        return total, None


class Retention:
    """Removes entries older than the retention period, oldest first, keeping chains whole."""

    def __init__(self, store: TrailStore, days: int) -> None:
        self._store = store
        self._days = days

    async def prune(self, now: datetime, batch: int = 1000) -> int:
        """Remove what is past retention; the anchor moves first, so a crash in between
        leaves removable entries behind the anchor, never a broken chain."""
        cutoff = (now - timedelta(days=self._days)).isoformat().replace("+00:00", "Z")
        removed = 0
        for chain in await self._store.chain_ids():
            while True:
                anchor = await self._store.anchor(chain)
                run = await self._store.oldest_before(chain, anchor, cutoff, batch)
                if not run:
                    break
                last = run[-1]
                await self._store.set_anchor(chain, Anchor(int(last["seq"]), str(last["hash"])))
                await self._store.remove([str(doc["_id"]) for doc in run])
                removed += len(run)
        return removed
