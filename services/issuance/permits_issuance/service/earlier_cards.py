"""Importing the earlier system's cards: into the register, then onto Kafka like cards issued
here, so rights, verification and the agency feeds follow with no special case.

The file is read as a stream in batches. For each batch the store learns the cards first
(number claims, card issues, register entries: inserts keyed by what is unique, one command per
batch and collection; sequence counters alongside, where a long row of imported numbers needs
one), then the card events are handed to the producer with the same derived ids issuance uses.
The next batch's store work overlaps the broker's acknowledgements; a checkpoint records a
batch's lines once its events are on Kafka. Killed anywhere, a run of the same file resumes
after the checkpoint; the batches in flight are done again, which changes nothing in the store
(each card records the file and line it came from, so it still counts as imported) and
publishes events consumers drop as repeats. Cards already present are published again for that
reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import orjson

from permits_common.domain.card import ApplicationKind, HolderStatus
from permits_common.domain.permit_number import parse
from permits_common.events import topics
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import CardIssued, CardReportedLost, CardRevoked, CardSuperseded
from permits_common.kafka import TRANSIENT_ERRORS, EventPublisher
from permits_common.logs import get_logger
from permits_common.reference import acceptance_points_by_code
from permits_issuance.adapters.earlier_cards_store import EarlierCardsStore, card_key
from permits_issuance.domain.earlier_cards import (
    CONFLICTING_RECORD,
    EarlierCard,
    LineRejectedError,
    parse_line,
)
from permits_issuance.domain.numbering import counter_key
from permits_issuance.service.numbers import PERSIST_EVERY

BATCH_LINES = 1000
EVENT_BATCH_BYTES = 512 * 1024
"""Record batch size of the import's producer: a batch of lines puts ~250 KB of card events on
each partition, and the producer holds one record batch per partition at a time, so the
default 16 KB waited for the broker 16 times in a row per batch of lines."""
RETRIES = 12
"""Attempts per batch before a store or broker outage stops the run (about a minute)."""
log = get_logger("import")


@dataclass
class Summary:
    """What a run did; `resumed_at` is the first line this run read (1 for a fresh run). A
    file imported to the end before counts every card as already present."""

    lines: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    resumed_at: int = 1


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused line, as written to FILE.rejects.jsonl."""

    line: int
    code: str
    message: str


def rejects_path(path: Path) -> Path:
    """FILE.rejects.jsonl beside FILE, its `.jsonl` replaced."""
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}.rejects.jsonl")


def file_digest(path: Path) -> str:
    """Which file this is, whatever its name: the checkpoint key."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(stream: BinaryIO, skip: int) -> Iterator[tuple[int, list[tuple[int, bytes]], int]]:
    """(first line number, [(line number, bytes)], bytes read) for batches after `skip`."""
    batch: list[tuple[int, bytes]] = []
    for number, raw in enumerate(stream, start=1):
        if number <= skip:
            continue
        if raw.strip():
            batch.append((number, raw))
        if len(batch) >= BATCH_LINES:
            yield number, batch, stream.tell()
            batch = []
    if batch:
        yield batch[-1][0], batch, stream.tell()


class CardImport:
    """One import run over one file."""

    def __init__(
        self, store: EarlierCardsStore, publisher: EventPublisher, cards_topic: str = topics.CARDS
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._cards_topic = cards_topic
        self._counters_written: dict[str, int] = {}
        self._indexes_taken: dict[str, set[int]] = {}
        self._claimed_last_batch: set[str] = set()
        self._people_last_batch: set[str] = set()

    async def run(
        self, path: Path, progress: Callable[[int, Summary], None] = lambda _b, _s: None
    ) -> Summary:
        """Import the file (or the rest of it); `progress(bytes_read, summary)` per batch."""
        digest = file_digest(path)
        previous = await self._store.checkpoint(digest)
        summary = Summary()
        done_lines = 0
        if previous is not None and previous.get("complete"):
            return Summary(
                lines=int(previous["lines"]),
                already_present=int(previous["imported"]) + int(previous["already_present"]),
                rejected=int(previous["rejected"]),
                resumed_at=int(previous["lines"]) + 1,
            )
        if previous is not None:
            done_lines = int(previous["lines"])
            summary = Summary(
                lines=done_lines,
                imported=int(previous["imported"]),
                already_present=int(previous["already_present"]),
                rejected=int(previous["rejected"]),
                resumed_at=done_lines + 1,
            )
        rejects = _RejectsFile(rejects_path(path), keep_below=done_lines + 1)
        in_flight: _Published | None = None
        try:
            with path.open("rb") as stream:
                for last_line, batch, offset in _batches(stream, done_lines):
                    refused, events = await self._batch_retried(batch, summary, digest)
                    rejects.write(refused)
                    summary.lines = last_line
                    acknowledging = in_flight
                    in_flight = _Published(events, self._send(events), replace(summary), offset)
                    if acknowledging is not None:
                        await self._settle(acknowledging, in_flight, digest, progress)
            if in_flight is not None:
                await self._settle(in_flight, None, digest, progress)
                in_flight = None
            await self._store.save_checkpoint(digest, {**asdict(summary), "complete": True})
        finally:
            if in_flight is not None:
                in_flight.forget()
            rejects.close()
        return summary

    async def _settle(
        self,
        batch: _Published,
        later: _Published | None,
        digest: str,
        progress: Callable[[int, Summary], None],
    ) -> None:
        """Wait until the broker has a batch's events, then checkpoint it. Sent again after a
        broker outage, together with the later batch already sent, so that a card's events
        still reach the topic in file order."""
        delay = 0.5
        for attempt in range(RETRIES + 1):
            try:
                await batch.acks
                break
            except TRANSIENT_ERRORS as exc:
                if attempt == RETRIES:
                    raise
                log.warning("import events not acknowledged, resending", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                events = batch.events + (later.events if later is not None else [])
                batch.acks = self._send(events)
                if later is not None:
                    later.forget()
                    later.acks = batch.acks
        await self._store.save_checkpoint(digest, asdict(batch.summary))
        progress(batch.offset, batch.summary)

    async def _batch_retried(
        self, batch: list[tuple[int, bytes]], summary: Summary, source: str
    ) -> tuple[list[Reject], list[Event[Any]]]:
        """A batch through store outages: every step is keyed, so a batch done again after a
        failure half way changes nothing."""
        delay = 0.5
        for _ in range(RETRIES):
            counts = (summary.imported, summary.already_present, summary.rejected)
            try:
                return await self._batch(batch, summary, source)
            except TRANSIENT_ERRORS as exc:
                summary.imported, summary.already_present, summary.rejected = counts
                log.warning("import batch interrupted, retrying", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        return await self._batch(batch, summary, source)

    async def _batch(
        self, batch: list[tuple[int, bytes]], summary: Summary, source: str
    ) -> tuple[list[Reject], list[Event[Any]]]:
        """Validate and store one batch; returns its rejects and the card events to publish."""
        refused: list[Reject] = []
        cards: dict[str, tuple[int, EarlierCard]] = {}
        for line, raw in batch:
            try:
                card = parse_line(raw)
            except LineRejectedError as exc:
                refused.append(Reject(line, exc.code, exc.message))
                continue
            key = card_key(card)
            if key in cards:
                if cards[key][1].digest() != card.digest():
                    refused.append(
                        Reject(
                            line,
                            CONFLICTING_RECORD,
                            "the same card issue appears with other details on an earlier line",
                        )
                    )
                else:
                    summary.already_present += 1
                continue
            cards[key] = (line, card)
        stored, learned = await asyncio.gather(
            self._store_cards(cards, refused, source),
            self._learn_counters([card for _, card in cards.values()]),
            return_exceptions=True,
        )
        for outcome in (stored, learned):
            if isinstance(outcome, BaseException):
                raise outcome
        imported = cast(list[tuple[EarlierCard, bool]], stored)
        new = [card for card, is_new in imported if is_new]
        summary.imported += len(new)
        summary.already_present += len(imported) - len(new)
        summary.rejected += len(refused)
        events = [e for card, _ in imported for e in self._events(card)]
        return sorted(refused, key=lambda reject: reject.line), events

    async def _store_cards(
        self, cards: dict[str, tuple[int, EarlierCard]], refused: list[Reject], source: str
    ) -> list[tuple[EarlierCard, bool]]:
        """Claims, card issues and register entries of a batch's valid cards; returns the
        cards to publish, each with whether this file brought it in (a line of this file done
        again after an interruption counts as imported, a card from elsewhere as present)."""
        refused += await self._conflicting_numbers(cards)
        stored = await self._store.record_cards(list(cards.values()), source)
        present: list[EarlierCard] = []
        for key, known in stored.items():
            line, card = cards[key]
            if known["digest"] != card.digest():
                del cards[key]
                refused.append(
                    Reject(
                        line,
                        CONFLICTING_RECORD,
                        "the same card issue is in the register with other details",
                    )
                )
            elif known.get("source") != source or known.get("line") != line:
                del cards[key]
                present.append(card)
        latest: dict[str, EarlierCard] = {}
        for _, card in cards.values():
            if card.person not in latest or latest[card.person].issue_count < card.issue_count:
                latest[card.person] = card
        clashes = await self._store.update_holders(latest, self._people_last_batch)
        self._people_last_batch = set(latest) - clashes
        if clashes:
            dropped = [key for key, (_, c) in cards.items() if c.person in clashes]
            await self._store.forget_cards(dropped)
            for key in dropped:
                line, _ = cards.pop(key)
                refused.append(
                    Reject(line, CONFLICTING_RECORD, "the person holds another card number")
                )
        return [(card, True) for _, card in cards.values()] + [(c, False) for c in present]

    async def _learn_counters(self, cards: list[EarlierCard]) -> None:
        """Move a sequence counter past imported numbers only where issuance would otherwise
        meet a long row of them. The counter is a hint: issuance's claim of a number (an
        insert keyed by the number, which the import made for every imported card) is what
        keeps a number from being given out twice, and issuance itself writes its counters
        only every `PERSIST_EVERY` indexes, so after a restart it may try that many taken
        numbers before a free one. A counter is written here where the run imported at least
        that many consecutive indexes of one key (to the end of the highest such row); the
        indexes each key took in this run are remembered (at most a key's capacity, for
        keys bounded by the calendar, not by the file), each counter written once and raised
        only when a later batch extends a row. Scattered numbers, as earlier systems hand out
        over the years, cost issuance a refused claim or two and no document per card here."""
        new: dict[str, int] = {}
        higher: dict[str, int] = {}
        changed: set[str] = set()
        for card in cards:
            key = counter_key(card.region, card.birth_date, card.sex)
            self._indexes_taken.setdefault(key, set()).add(_index(card))
            changed.add(key)
        for key in changed:
            after = _end_of_long_row(self._indexes_taken[key])
            if after is None:
                continue
            written = self._counters_written.get(key)
            if written is None:
                new[key] = after
            elif written < after:
                higher[key] = after
        if new or higher:
            await self._store.learn_counters(new, higher)
        self._counters_written.update(new)
        self._counters_written.update(higher)

    def _send(self, events: list[Event[Any]]) -> asyncio.Future[Any]:
        """Hand a batch's events to the producer in order, without waiting for the broker:
        the future completes when the broker has all of them."""
        producer = self._publisher.producer
        topic = self._cards_topic

        async def sent() -> None:
            acks = [await producer.send(topic, e.to_json(), key=e.key) for e in events]
            await asyncio.gather(*acks)

        return asyncio.ensure_future(sent())

    async def _conflicting_numbers(self, cards: dict[str, tuple[int, EarlierCard]]) -> list[Reject]:
        """Refuse issues whose number belongs to another person (in this batch or before)."""
        refused: list[Reject] = []
        owners: dict[str, str] = {}
        for key, (line, card) in list(cards.items()):
            owner = owners.setdefault(card.card_number, card.person)
            if owner != card.person:
                del cards[key]
                refused.append(
                    Reject(
                        line,
                        CONFLICTING_RECORD,
                        "the number belongs to another person on an earlier line",
                    )
                )
        held = await self._store.claim_numbers(owners, self._claimed_last_batch)
        self._claimed_last_batch = set(owners) - set(held)
        for key, (line, card) in list(cards.items()):
            if card.card_number in held:
                del cards[key]
                refused.append(
                    Reject(line, CONFLICTING_RECORD, "the number belongs to another person")
                )
        return refused

    def _events(self, card: EarlierCard) -> list[Event[Any]]:
        point = acceptance_points_by_code()[card.acceptance_point]
        application_id = f"earlier-{card.card_number}-{card.issue_count}"
        number, issue = card.card_number, card.issue_count
        events: list[Event[Any]] = [
            self._publisher.event(
                CardIssued(
                    card_number=number,
                    issue_count=issue,
                    application_id=application_id,
                    kind=ApplicationKind.FIRST if issue == 1 else ApplicationKind.RENEWAL,
                    name=card.name,
                    name_latin=card.name_latin,
                    sex=card.sex,
                    birth_date=card.birth_date,
                    region=card.region,
                    address="",
                    district=point.district,
                    travel_permit_number=card.travel_permit_number,
                    valid_from=card.valid_from,
                    valid_until=card.valid_until,
                    issuing_authority=card.issuing_authority,
                    acceptance_point=point.code,
                ),
                event_id=derived_event_id(number, issue, "card.issued"),
            )
        ]
        now = datetime.now(UTC)
        status_event: Any = None
        if card.status is HolderStatus.REPORTED_LOST:
            status_event = CardReportedLost(card_number=number, issue_count=issue, reported_at=now)
        elif card.status is HolderStatus.REVOKED:
            status_event = CardRevoked(
                card_number=number,
                issue_count=issue,
                reason="revoked in the earlier system",
                revoked_at=now,
            )
        elif card.status is HolderStatus.SUPERSEDED:
            status_event = CardSuperseded(
                card_number=number,
                issue_count=issue,
                superseded_by_issue_count=issue + 1,
                application_id=application_id,
            )
        if status_event is not None:
            events.append(
                self._publisher.event(
                    status_event,
                    event_id=derived_event_id(number, issue, status_event.TYPE, "earlier"),
                )
            )
        return events


class _Published:
    """A batch whose events are with the producer: what to checkpoint once they are on Kafka."""

    def __init__(
        self, events: list[Event[Any]], acks: asyncio.Future[Any], summary: Summary, offset: int
    ) -> None:
        self.events = events
        self.acks = acks
        self.summary = summary
        self.offset = offset

    def forget(self) -> None:
        """Stop waiting for these acknowledgements (sent again, or the run is ending)."""
        self.acks.add_done_callback(lambda done: done.cancelled() or done.exception())


def _index(card: EarlierCard) -> int:
    """The counter index of an imported number (what `nth_sequence` maps back to it)."""
    return (parse(card.card_number).sequence - 1) // 2


def _end_of_long_row(indexes: set[int]) -> int | None:
    """The index after the highest row of at least `PERSIST_EVERY` consecutive indexes, or
    None when there is no such row."""
    end: int | None = None
    row_start = previous = None
    for index in sorted(indexes):
        if previous is None or index != previous + 1:
            row_start = index
        previous = index
        if row_start is not None and index + 1 - row_start >= PERSIST_EVERY:
            end = index + 1
    return end


class _RejectsFile:
    """FILE.rejects.jsonl: rewritten for a fresh run; on a resumed run the lines before the
    checkpoint are kept and those of the batch that was in flight are written once more."""

    def __init__(self, path: Path, keep_below: int) -> None:
        if keep_below > 1 and path.exists():
            kept = path.with_name(path.name + ".partial")
            with path.open("rb") as old, kept.open("wb") as new:
                new.writelines(raw for raw in old if int(orjson.loads(raw)["line"]) < keep_below)
            kept.replace(path)
            self._stream = path.open("ab")
        else:
            self._stream = path.open("wb")

    def write(self, rejects: list[Reject]) -> None:
        for reject in rejects:
            self._stream.write(orjson.dumps(asdict(reject)) + b"\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()
