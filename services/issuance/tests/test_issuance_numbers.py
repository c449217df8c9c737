"""Permit-number allocation: parity by sex, uniqueness under a lagging counter, exhaustion."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from permits_common.domain import permit_number
from permits_common.domain.permit_number import SequenceExhaustedError
from permits_common.domain.regions import Region, Sex
from permits_issuance.domain.numbering import candidate, capacity, counter_key
from permits_issuance.service.numbers import allocate_number

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BIRTH = date(1990, 1, 1)


class InMemoryClaims:
    """The claim rules of the store (first insert of a number wins) without a store.

    `lagging=True` behaves like FerretDB's non-atomic counter: the hint never moves on.
    """

    def __init__(self, *, lagging: bool = False) -> None:
        self.counters: dict[str, int] = {}
        self.numbers: dict[str, str] = {}
        self.lagging = lagging

    async def next_counter_hint(self, key: str) -> int:
        current = self.counters.get(key, 0)
        await asyncio.sleep(0)
        if not self.lagging:
            self.counters[key] = current + 1
        return current

    async def raise_counter(self, key: str, at_least: int) -> None:
        if not self.lagging:
            self.counters[key] = max(self.counters.get(key, 0), at_least)

    async def claim_number(self, number: str, application_id: str, at: datetime) -> str | None:
        await asyncio.sleep(0)
        if number in self.numbers:
            return self.numbers[number]
        self.numbers[number] = application_id
        return None

    async def number_claimed_by(self, application_id: str) -> str | None:
        return next((n for n, a in self.numbers.items() if a == application_id), None)


async def _allocate(claims: InMemoryClaims, application_id: str, sex: Sex) -> str:
    return await allocate_number(
        claims, application_id=application_id, region=Region.HK, birth_date=BIRTH, sex=sex, now=NOW
    )


def test_first_numbers_follow_the_standard() -> None:
    assert candidate(Region.HK, BIRTH, Sex.MALE, 0).value == "810000199001010019"
    assert candidate(Region.MO, BIRTH, Sex.FEMALE, 0).value.startswith("82000019900101002")
    assert candidate(Region.TW, date(2000, 2, 29), Sex.MALE, 4).value[:17] == ("83000020000229009")
    assert counter_key(Region.HK, BIRTH, Sex.FEMALE) == "810000-19900101-F"


async def test_sequence_parity_follows_sex_and_numbers_are_valid() -> None:
    claims = InMemoryClaims()
    men = [await _allocate(claims, f"m{i}", Sex.MALE) for i in range(5)]
    women = [await _allocate(claims, f"f{i}", Sex.FEMALE) for i in range(5)]
    assert [int(n[14:17]) for n in men] == [1, 3, 5, 7, 9]
    assert [int(n[14:17]) for n in women] == [2, 4, 6, 8, 10]
    for number in men + women:
        assert permit_number.is_valid(number)
        assert number.startswith("81000019900101")


async def test_concurrent_allocation_with_a_lagging_counter_never_repeats_a_number() -> None:
    claims = InMemoryClaims(lagging=True)
    numbers = await asyncio.gather(*(_allocate(claims, f"a{i}", Sex.MALE) for i in range(40)))
    assert len(set(numbers)) == 40


async def test_the_same_application_gets_its_number_back() -> None:
    claims = InMemoryClaims()
    first = await _allocate(claims, "same", Sex.FEMALE)
    assert await _allocate(claims, "same", Sex.FEMALE) == first
    assert len(claims.numbers) == 1


async def test_exhausted_sequences_raise() -> None:
    claims = InMemoryClaims()
    assert capacity(Sex.MALE) == 500
    assert capacity(Sex.FEMALE) == 499
    claims.counters[counter_key(Region.HK, BIRTH, Sex.FEMALE)] = capacity(Sex.FEMALE) - 1
    last = await _allocate(claims, "last", Sex.FEMALE)
    assert last[14:17] == "998"
    with pytest.raises(SequenceExhaustedError):
        await _allocate(claims, "one-too-many", Sex.FEMALE)
