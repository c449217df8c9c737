"""Allocating a new permit number: unique per address code and birth date, never reused.

The counter gives the index to try first; the claim (an insert keyed by the number) decides.
When the counter lags (FerretDB does not increment atomically) the claim fails and the next
index is tried, so two workers never give out the same number; a claimed number that ends up
unused (a lost race for the same application) is simply never given out: gaps are allowed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from permits_common.domain.permit_number import PermitNumber, SequenceExhaustedError
from permits_common.domain.regions import Region, Sex
from permits_issuance.domain.numbering import candidate, capacity, counter_key


class NumberClaims(Protocol):
    """Where counters and claimed numbers are kept (the store, or a dict in unit tests)."""

    async def next_counter_hint(self, key: str) -> int:
        """The next index the counter suggests (0-based)."""

    async def raise_counter(self, key: str, at_least: int) -> None:
        """Move the counter past indexes found taken."""

    async def claim_number(self, number: str, application_id: str, at: datetime) -> str | None:
        """None when claimed now; otherwise the application id that holds it."""

    async def number_claimed_by(self, application_id: str) -> str | None:
        """A number this application claimed before, if any."""


async def allocate_number(
    claims: NumberClaims,
    *,
    application_id: str,
    region: Region,
    birth_date: date,
    sex: Sex,
    now: datetime,
) -> str:
    """A permit number no one else holds; SequenceExhaustedError when none is left."""
    earlier = await claims.number_claimed_by(application_id)
    if earlier is not None:
        return earlier
    key = counter_key(region, birth_date, sex)
    hint = await claims.next_counter_hint(key)
    index, last = hint, capacity(sex)
    while index < last:
        number: PermitNumber = candidate(region, birth_date, sex, index)
        holder = await claims.claim_number(number.value, application_id, now)
        if holder is None or holder == application_id:
            if index > hint:
                await claims.raise_counter(key, index + 1)
            return number.value
        index += 1
    raise SequenceExhaustedError(sex)
