"""The trail in the document store: entries (append-only) and one state document per chain.

Entries are only ever inserted, never updated; an entry's `_id` is its chain position, so a
position can be taken once, and the next position of a chain is found by primary key. The
chain document records the head (a hint, moved after each appended batch) and the retention
anchor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from permits_audit.domain.chain import Anchor, ChainHead, entry_id
from permits_common.mongo import DUPLICATE_KEY, Document, ensure_index


class PositionTakenError(Exception):
    """Another writer stored an entry at a position this batch wanted (a rebalance overlap)."""


class DuplicateEntryError(Exception):
    """An entry with this event id is already in the trail; `index` is its place in the batch."""

    def __init__(self, index: int) -> None:
        super().__init__(f"entry {index} of the batch is already stored")
        self.index = index


class TrailStore:
    """Collections of the audit database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self.entries: AsyncCollection[Document] = database["entries"]
        self.chains: AsyncCollection[Document] = database["chains"]

    async def create_indexes(self) -> None:
        """Lookups by subject; one entry per event id. A chain is read by `_id` (its
        positions), so neither the chain nor the time has an index: no query used them, and
        every index is work for each appended entry (docs/benchmarks.md, "The store's CPU per
        application")."""
        await ensure_index(self.entries, [("subject", ASCENDING)])
        await ensure_index(self.entries, [("event_id", ASCENDING)], unique=True)

    async def head(self, chain: int) -> ChainHead:
        """The true last entry of a chain: the recorded head, then forward by primary key
        past any batch stored after the head was last moved (a crash in between)."""
        state = await self.chains.find_one({"_id": chain})
        head = ChainHead(chain)
        if state is not None and "head_seq" in state:
            head = ChainHead(
                chain, int(state["head_seq"]), str(state["head_hash"]), int(state["head_offset"])
            )
        elif state is not None and "anchor_seq" in state:
            head = ChainHead(chain, int(state["anchor_seq"]), str(state["anchor_hash"]))
        while True:
            entry = await self.entries.find_one({"_id": entry_id(chain, head.seq + 1)})
            if entry is None:
                return head
            head = ChainHead(chain, int(entry["seq"]), str(entry["hash"]), int(entry["offset"]))

    async def recorded_head(self, chain: int) -> ChainHead | None:
        """The head as last recorded (for verification: what the writer said it had)."""
        state = await self.chains.find_one({"_id": chain})
        if state is None or "head_seq" not in state:
            return None
        return ChainHead(
            chain, int(state["head_seq"]), str(state["head_hash"]), int(state["head_offset"])
        )

    async def anchor(self, chain: int) -> Anchor:
        """Where the kept part of the chain starts."""
        state = await self.chains.find_one({"_id": chain})
        if state is None or "anchor_seq" not in state:
            return Anchor()
        return Anchor(int(state["anchor_seq"]), str(state["anchor_hash"]))

    async def chain_ids(self) -> list[int]:
        """Every chain that has a state document."""
        return sorted([int(doc["_id"]) async for doc in self.chains.find({}, {"_id": 1})])

    async def append(self, docs: Sequence[Document]) -> None:
        """Insert a linked batch in order; raises PositionTakenError or DuplicateEntryError at
        the first entry that could not be stored (those before it are stored)."""
        if not docs:
            return
        try:
            await self.entries.insert_many(list(docs), ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or errors[0].get("code") != DUPLICATE_KEY:
                raise
            index = int(errors[0]["index"])
            stored = await self.entries.find_one({"_id": docs[index]["_id"]}, {"_id": 1})
            if stored is not None:
                raise PositionTakenError(docs[index]["_id"]) from None
            raise DuplicateEntryError(index) from None

    async def move_head(self, head: ChainHead) -> None:
        """Record the chain's head after a batch (only ever forward)."""
        await self.chains.update_one(
            {"_id": head.chain},
            {
                "$set": {
                    "head_seq": head.seq,
                    "head_hash": head.hash,
                    "head_offset": head.offset,
                }
            },
            upsert=True,
        )

    async def for_subject(self, subject: str, limit: int) -> list[Document]:
        """Entries about one application or card, oldest first."""
        docs = [doc async for doc in self.entries.find({"subject": subject}).limit(limit)]
        docs.sort(key=lambda doc: (str(doc["at"]), str(doc["_id"])))
        return docs

    async def walk(self, chain: int, batch: int = 2000) -> AsyncIterator[Document]:
        """Every stored entry of a chain in position order, read page by page by `_id`."""
        after = entry_id(chain, 0)
        last = entry_id(chain + 1, 0)
        while True:
            page = [
                doc
                async for doc in self.entries.find({"_id": {"$gt": after, "$lt": last}})
                .sort("_id", ASCENDING)
                .limit(batch)
            ]
            for doc in page:
                yield doc
            if len(page) < batch:
                return
            after = str(page[-1]["_id"])

    async def count(self) -> int:
        """Entries stored (all chains)."""
        return await self.entries.estimated_document_count()

    async def oldest_before(self, chain: int, anchor: Anchor, cutoff: str, limit: int) -> list[Any]:
        """The run of entries right after the anchor that are older than `cutoff` (ISO time)."""
        run: list[Any] = []
        seq = anchor.seq
        async for doc in self.walk(chain):
            if int(doc["seq"]) <= seq:
                continue
            if int(doc["seq"]) != seq + 1 or str(doc["at"]) >= cutoff or len(run) >= limit:
                break
            run.append(doc)
            seq += 1
        return run

    async def set_anchor(self, chain: int, anchor: Anchor) -> None:
        """Move the retention anchor forward before the entries behind it are removed."""
        await self.chains.update_one(
            {"_id": chain},
            {"$set": {"anchor_seq": anchor.seq, "anchor_hash": anchor.hash}},
            upsert=True,
        )

    async def remove(self, ids: Sequence[str]) -> None:
        """Delete entries behind the anchor (retention only)."""
        if ids:
            await self.entries.delete_many({"_id": {"$in": list(ids)}})
