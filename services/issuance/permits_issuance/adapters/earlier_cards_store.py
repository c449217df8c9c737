"""What the import of earlier cards writes in the issuance store, batch by batch.

Every write is an insert keyed by what must be unique (the number's claim, the card issue, the
person's register entry, the sequence counter), so a batch written twice changes nothing; the
few keys that exist already are then looked up one by one, by primary key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

from permits_common.mongo import Document, insert_new
from permits_issuance.adapters.store import IssuanceStore, iso
from permits_issuance.domain.earlier_cards import EarlierCard

EARLIER_OWNER = "earlier:"
"""Prefix of the owner of a number claimed by an imported card: `earlier:<person>`."""

T = TypeVar("T")


def card_key(card: EarlierCard) -> str:
    """The `_id` of one imported card issue."""
    return f"{card.card_number}|{card.issue_count}"


class EarlierCardsStore:
    """The import's view of the issuance store."""

    def __init__(self, store: IssuanceStore, concurrency: int = 32) -> None:
        self._store = store
        self.imported = store.database["imported_cards"]
        self.imports = store.database["imports"]
        self._slots = asyncio.Semaphore(concurrency)

    async def _limited(self, work: Awaitable[T]) -> T:
        async with self._slots:
            return await work

    async def claim_numbers(
        self, owners: dict[str, str], claimed_before: Iterable[str] = ()
    ) -> dict[str, str]:
        """Claim numbers for their people (except those this run claimed in its previous
        batch: an insert that meets existing keys costs FerretDB seconds); returns the numbers
        held by someone else, with their owner."""
        skip = set(claimed_before)
        docs = [
            {"_id": number, "application_id": EARLIER_OWNER + person}
            for number, person in owners.items()
            if number not in skip
        ]
        taken = await insert_new(self._store.permit_numbers, docs)
        found = await asyncio.gather(
            *(self._limited(self._store.permit_numbers.find_one({"_id": n})) for n in taken)
        )
        return {
            str(doc["_id"]): str(doc["application_id"])
            for doc in found
            if doc is not None and doc["application_id"] != EARLIER_OWNER + owners[doc["_id"]]
        }

    async def record_cards(
        self, cards: Sequence[tuple[int, EarlierCard]], source: str
    ) -> dict[str, Document]:
        """Record card issues with the file (`source`) and line they came from, so a batch
        done again after an interruption knows its own cards; returns the stored record of
        the keys that existed."""
        docs = [
            {
                "_id": card_key(card),
                "digest": card.digest(),
                "person": card.person,
                "source": source,
                "line": line,
            }
            for line, card in cards
        ]
        existing = await insert_new(self.imported, docs)
        found = await asyncio.gather(
            *(self._limited(self.imported.find_one({"_id": key})) for key in existing)
        )
        return {str(doc["_id"]): doc for doc in found if doc is not None}

    async def forget_cards(self, keys: Iterable[str]) -> None:
        """Remove records of issues refused after they were recorded."""
        keys = list(keys)
        if keys:
            await asyncio.gather(
                *(self._limited(self.imported.delete_one({"_id": key})) for key in keys)
            )

    async def update_holders(
        self, latest: dict[str, EarlierCard], written_before: Iterable[str] = ()
    ) -> set[str]:
        """Make each person's latest imported issue their register entry unless a later one is
        there; returns the people whose register entry has another number (conflicts). People
        this run wrote in its previous batch are looked up rather than inserted again."""
        await self._store.mark_seen(list(latest))
        known = set(written_before) & set(latest)
        docs = [_holder_doc(card) for card in latest.values() if card.person not in known]
        existing = known | await insert_new(self._store.holders, docs)
        found = await asyncio.gather(
            *(self._limited(self._store.holders.find_one({"_id": p})) for p in existing)
        )
        conflicts: set[str] = set()
        updates: list[Awaitable[Any]] = []
        for doc in found:
            if doc is None:
                continue
            card = latest[str(doc["_id"])]
            if doc["card_number"] != card.card_number:
                conflicts.add(card.person)
            elif int(doc["issue_count"]) < card.issue_count:
                updates.append(
                    self._limited(
                        self._store.holders.replace_one({"_id": card.person}, _holder_doc(card))
                    )
                )
        await asyncio.gather(*updates)
        return conflicts

    async def learn_counters(self, new: dict[str, int], higher: dict[str, int]) -> None:
        """Move sequence counters past the indexes imported numbers use: `new` holds counters
        this run has not written yet (inserted; any that exist are raised instead), `higher`
        those it wrote with a lower index (raised)."""
        existing = await insert_new(
            self._store.counters, [{"_id": key, "next": after} for key, after in new.items()]
        )
        raise_to = {**higher, **{key: new[key] for key in existing}}
        await asyncio.gather(
            *(
                self._limited(
                    self._store.counters.update_one(
                        {"_id": key}, {"$max": {"next": after}}, upsert=True
                    )
                )
                for key, after in raise_to.items()
            )
        )

    async def checkpoint(self, file_digest: str) -> Document | None:
        """How far an earlier run of the same file got."""
        return await self.imports.find_one({"_id": file_digest})

    async def save_checkpoint(self, file_digest: str, progress: Document) -> None:
        """Remember the lines done, after their batch is in the store and on Kafka."""
        await self.imports.replace_one(
            {"_id": file_digest}, {"_id": file_digest, **progress}, upsert=True
        )


def _holder_doc(card: EarlierCard) -> Document:
    return {
        "_id": card.person,
        "card_number": card.card_number,
        "issue_count": card.issue_count,
        "status": card.status.value,
        "valid_until": iso(card.valid_until),
        "application_id": f"earlier-{card.card_number}-{card.issue_count}",
        "region": card.region.value,
    }
