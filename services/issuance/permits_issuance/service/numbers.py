"""Allocating a new permit number: unique per address code and birth date, never reused.

The claim (an insert keyed by the number) decides: two workers never give out the same number,
and a claimed number stays claimed after any crash, so it is never given out again. Which
index to try first is only a hint, kept in memory per (address code, birth date, sex): a new
key starts at 0, and the store's counter is read only when a claim is refused for a key this
process has not met before (a restart, or another worker numbering the same key). The counter
is written only when the hint was behind (a claim was refused) or every `PERSIST_EVERY`
indexes, so after a restart a key's first allocation probes at most that many taken numbers.
An index is taken in memory before its claim is sent, so concurrent allocations of one process
try different numbers. A claimed number that ends up unused (a crash before the decision was
recorded, or a lost race for the same application) is simply never given out: gaps are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from permits_common.domain.permit_number import PermitNumber, SequenceExhaustedError
from permits_common.domain.regions import Region, Sex
from permits_issuance.domain.numbering import candidate, capacity, counter_key

PERSIST_EVERY = 16


class NumberClaims(Protocol):
    """Where counters and claimed numbers are kept (the store, or a dict in unit tests)."""

    async def stored_counter(self, key: str) -> int:
        """The next index the stored counter suggests (0 when there is none)."""

    async def raise_counter(self, key: str, at_least: int) -> None:
        """Move the stored counter past indexes found taken."""

    async def claim_number(self, number: str, application_id: str, at: datetime) -> str | None:
        """None when claimed now; otherwise the application id that holds it."""

    async def claim_numbers(self, claims: Sequence[tuple[str, str]], at: datetime) -> set[str]:
        """Claim (number, application id) pairs in one command; the numbers already taken."""


class CounterHints:
    """The next index to try per counter key, in this process's memory."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._seeded: set[str] = set()

    def next_index(self, key: str) -> int:
        """Where to start for this key."""
        return self._next.get(key, 0)

    def seeded(self, key: str) -> bool:
        """Whether the stored counter was read for this key already."""
        return key in self._seeded

    def seed(self, key: str, stored: int) -> int:
        """Take the stored counter into account; returns the index to go on from."""
        self._seeded.add(key)
        self._next[key] = max(self._next.get(key, 0), stored)
        return self._next[key]

    def taken(self, key: str, index: int) -> None:
        """`index` is claimed: never start below the next one."""
        self._next[key] = max(self._next.get(key, 0), index + 1)


async def allocate_number(
    claims: NumberClaims,
    hints: CounterHints,
    *,
    application_id: str,
    region: Region,
    birth_date: date,
    sex: Sex,
    now: datetime,
) -> str:
    """A permit number no one else holds; SequenceExhaustedError when none is left."""
    key = counter_key(region, birth_date, sex)
    index, last = hints.next_index(key), capacity(sex)
    refused = False
    while index < last:
        number: PermitNumber = candidate(region, birth_date, sex, index)
        hints.taken(key, index)
        holder = await claims.claim_number(number.value, application_id, now)
        if holder is None or holder == application_id:
            if refused or (index + 1) % PERSIST_EVERY == 0:
                await claims.raise_counter(key, index + 1)
            return number.value
        refused = True
        if not hints.seeded(key):
            index = max(index + 1, hints.seed(key, await claims.stored_counter(key)))
            continue
        index += 1
    raise SequenceExhaustedError(sex)


@dataclass(frozen=True, slots=True)
class NumberRequest:
    """One application that needs a new number."""

    application_id: str
    region: Region
    birth_date: date
    sex: Sex


async def allocate_numbers(
    claims: NumberClaims, hints: CounterHints, requests: Sequence[NumberRequest], *, now: datetime
) -> dict[str, str | SequenceExhaustedError]:
    """Numbers for a batch of applications, by application id: each request's next candidate
    is claimed in one command, and a request whose candidate was taken (or whose key is
    exhausted) goes on one claim at a time, as `allocate_number` does. A number is still
    only ever given out by its own successful claim."""
    first: list[tuple[NumberRequest, str, str, int]] = []
    outcome: dict[str, str | SequenceExhaustedError] = {}
    for request in requests:
        key = counter_key(request.region, request.birth_date, request.sex)
        index = hints.next_index(key)
        if index >= capacity(request.sex):
            outcome[request.application_id] = SequenceExhaustedError(request.sex)
            continue
        hints.taken(key, index)
        number = candidate(request.region, request.birth_date, request.sex, index).value
        first.append((request, number, key, index))
    taken = await claims.claim_numbers([(n, r.application_id) for r, n, _, _ in first], now)
    for request, number, key, index in first:
        if number not in taken:
            if (index + 1) % PERSIST_EVERY == 0:
                await claims.raise_counter(key, index + 1)
            outcome[request.application_id] = number
            continue
        try:
            outcome[request.application_id] = await allocate_number(
                claims,
                hints,
                application_id=request.application_id,
                region=request.region,
                birth_date=request.birth_date,
                sex=request.sex,
                now=now,
            )
        except SequenceExhaustedError as exc:
            outcome[request.application_id] = exc
    return outcome
