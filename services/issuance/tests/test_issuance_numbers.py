"""Permit-number allocation: parity by sex, uniqueness under a lagging counter, exhaustion."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest

from permits_common.domain import permit_number
from permits_common.domain.permit_number import SequenceExhaustedError
from permits_common.domain.regions import Region, Sex
from permits_issuance.domain.numbering import candidate, capacity, counter_key
from permits_issuance.service.numbers import (
    PERSIST_EVERY,
    CounterHints,
    NumberRequest,
    allocate_number,
    allocate_numbers,
)

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BIRTH = date(1990, 1, 1)


class InMemoryClaims:
    """The claim rules of the store (first insert of a number wins) without a store.

    `lagging=True` behaves like a stored counter that is never written.
    """

    def __init__(self, *, lagging: bool = False) -> None:
        self.counters: dict[str, int] = {}
        self.numbers: dict[str, str] = {}
        self.lagging = lagging
        self.attempts = 0
        self.commands = 0

    async def stored_counter(self, key: str) -> int:
        await asyncio.sleep(0)
        return self.counters.get(key, 0)

    async def raise_counter(self, key: str, at_least: int) -> None:
        if not self.lagging:
            self.counters[key] = max(self.counters.get(key, 0), at_least)

    async def claim_number(self, number: str, application_id: str, at: datetime) -> str | None:
        self.attempts += 1
        await asyncio.sleep(0)
        if number in self.numbers:
            return self.numbers[number]
        self.numbers[number] = application_id
        return None

    async def claim_numbers(self, claims: Sequence[tuple[str, str]], at: datetime) -> set[str]:
        self.commands += 1
        taken = set()
        for number, application_id in claims:
            if number in self.numbers:
                taken.add(number)
            else:
                self.numbers[number] = application_id
        return taken


async def _allocate(
    claims: InMemoryClaims, application_id: str, sex: Sex, hints: CounterHints | None = None
) -> str:
    return await allocate_number(
        claims,
        hints or CounterHints(),
        application_id=application_id,
        region=Region.HK,
        birth_date=BIRTH,
        sex=sex,
        now=NOW,
    )


def test_first_numbers_follow_the_standard() -> None:
    assert candidate(Region.HK, BIRTH, Sex.MALE, 0).value == "810000199001010019"
    assert candidate(Region.MO, BIRTH, Sex.FEMALE, 0).value.startswith("82000019900101002")
    assert candidate(Region.TW, date(2000, 2, 29), Sex.MALE, 4).value[:17] == ("83000020000229009")
    assert counter_key(Region.HK, BIRTH, Sex.FEMALE) == "810000-19900101-F"


async def test_sequence_parity_follows_sex_and_numbers_are_valid() -> None:
    claims, hints = InMemoryClaims(), CounterHints()
    men = [await _allocate(claims, f"m{i}", Sex.MALE, hints) for i in range(5)]
    women = [await _allocate(claims, f"f{i}", Sex.FEMALE, hints) for i in range(5)]
    assert [int(n[14:17]) for n in men] == [1, 3, 5, 7, 9]
    assert [int(n[14:17]) for n in women] == [2, 4, 6, 8, 10]
    for number in men + women:
        assert permit_number.is_valid(number)
        assert number.startswith("81000019900101")
    assert claims.attempts == 10, "one claim per number while the hint is right"


async def test_concurrent_workers_with_a_lagging_counter_never_repeat_a_number() -> None:
    claims = InMemoryClaims(lagging=True)
    workers = [CounterHints() for _ in range(4)]
    numbers = await asyncio.gather(
        *(_allocate(claims, f"a{i}", Sex.MALE, workers[i % 4]) for i in range(40))
    )
    assert len(set(numbers)) == 40


async def test_after_a_restart_a_key_probes_at_most_a_few_taken_numbers() -> None:
    claims = InMemoryClaims()
    before_restart = CounterHints()
    taken = {await _allocate(claims, f"b{i}", Sex.FEMALE, before_restart) for i in range(40)}
    claims.attempts = 0
    after = await _allocate(claims, "after", Sex.FEMALE, CounterHints())
    assert after not in taken
    assert int(after[14:17]) == 2 * 40 + 2, "the next number, no gap"
    assert claims.attempts <= PERSIST_EVERY + 1


async def test_exhausted_sequences_raise() -> None:
    claims = InMemoryClaims()
    assert capacity(Sex.MALE) == 500
    assert capacity(Sex.FEMALE) == 499
    key = counter_key(Region.HK, BIRTH, Sex.FEMALE)
    claims.counters[key] = capacity(Sex.FEMALE) - 1
    claims.numbers[candidate(Region.HK, BIRTH, Sex.FEMALE, 0).value] = "someone"
    last = await _allocate(claims, "last", Sex.FEMALE)
    assert last[14:17] == "998"
    with pytest.raises(SequenceExhaustedError):
        await _allocate(claims, "one-too-many", Sex.FEMALE)


async def test_a_batch_claims_its_numbers_in_one_command_and_probes_past_taken_ones() -> None:
    claims = InMemoryClaims()
    hints = CounterHints()
    claims.numbers[candidate(Region.HK, BIRTH, Sex.MALE, 1).value] = "earlier, another worker"
    requests = [NumberRequest(f"app-{i}", Region.HK, BIRTH, Sex.MALE) for i in range(4)]
    requests.append(NumberRequest("app-other-day", Region.HK, date(1991, 5, 6), Sex.FEMALE))

    numbers = await allocate_numbers(claims, hints, requests, now=NOW)

    assert claims.commands == 1, "one command for the batch"
    assert numbers["app-0"] == candidate(Region.HK, BIRTH, Sex.MALE, 0).value
    taken_before = candidate(Region.HK, BIRTH, Sex.MALE, 1).value
    given = [numbers[r.application_id] for r in requests]
    assert taken_before not in given
    assert len(set(given)) == len(given)
    assert all(
        claims.numbers[str(n)] == r.application_id for n, r in zip(given, requests, strict=True)
    )
    assert numbers["app-other-day"] == candidate(Region.HK, date(1991, 5, 6), Sex.FEMALE, 0).value


async def test_a_batch_reports_an_exhausted_key_per_application() -> None:
    claims = InMemoryClaims()
    hints = CounterHints()
    key = counter_key(Region.HK, BIRTH, Sex.FEMALE)
    hints.seed(key, capacity(Sex.FEMALE))
    requests = [
        NumberRequest("full", Region.HK, BIRTH, Sex.FEMALE),
        NumberRequest("fine", Region.HK, BIRTH, Sex.MALE),
    ]

    numbers = await allocate_numbers(claims, hints, requests, now=NOW)

    assert isinstance(numbers["full"], SequenceExhaustedError)
    assert numbers["fine"] == candidate(Region.HK, BIRTH, Sex.MALE, 0).value
