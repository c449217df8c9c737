"""Which permit number the n-th person of a birth date and sex gets.

A counter per (address code, birth date, sex) hands out indexes 0, 1, 2, ...; the index picks
the n-th odd (men) or even (women) sequence, so the two sexes never compete for a sequence.
"""

from __future__ import annotations

from datetime import date

from permits_common.domain.permit_number import (
    PermitNumber,
    generate,
    nth_sequence,
    sequences_for,
)
from permits_common.domain.regions import Region, Sex


def counter_key(region: Region, birth_date: date, sex: Sex) -> str:
    """The key of the sequence counter that serves this person."""
    return f"{region.address_code}-{birth_date:%Y%m%d}-{sex.value}"


def candidate(region: Region, birth_date: date, sex: Sex, index: int) -> PermitNumber:
    """The number for counter index `index`; SequenceExhaustedError past the last sequence."""
    return generate(region, birth_date, nth_sequence(sex, index))


def capacity(sex: Sex) -> int:
    """How many people of one sex one birth date can number (500 men, 499 women)."""
    return len(sequences_for(sex))
