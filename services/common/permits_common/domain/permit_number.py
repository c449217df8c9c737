"""Residence permit numbers (GB 11643 citizen identity numbers with a HK/MO/TW address code).

The number is the holder's identity for life and is printed on the card, so it must be
generated and checked exactly as the national standard says: 6-digit address code, birth date,
3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from permits_common.domain.regions import Region, Sex

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "0123456789X"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
MAX_SEQUENCE = 999


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits (`X` stands for 10)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("the check character is computed over exactly 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[(12 - total % 11) % 11]


def sequence_matches_sex(sequence: int, sex: Sex) -> bool:
    """Odd sequences are for men, even ones for women (GB 11643 §5.3)."""
    return (sequence % 2 == 1) == (sex is Sex.MALE)


def sequences_for(sex: Sex) -> range:
    """All sequence values a person of this sex may be given, in allocation order."""
    return range(1, MAX_SEQUENCE + 1, 2) if sex is Sex.MALE else range(2, MAX_SEQUENCE + 1, 2)


def nth_sequence(sex: Sex, index: int) -> int:
    """The index-th (0-based) sequence of this sex; a counter per birth date feeds it."""
    candidates = sequences_for(sex)
    if not 0 <= index < len(candidates):
        raise SequenceExhaustedError(sex)
    return candidates[index]


class SequenceExhaustedError(Exception):
    """Every sequence for one birth date and sex has been given out (499 or 500 people)."""

    def __init__(self, sex: Sex) -> None:
        super().__init__(f"no sequence left for sex {sex.value} on this birth date")
        self.sex = sex


@dataclass(frozen=True, slots=True)
class PermitNumber:
    """A valid 18-character residence permit number, split into its parts."""

    value: str
    region: Region
    birth_date: date
    sequence: int

    @property
    def sex(self) -> Sex:
        """The sex the sequence parity encodes."""
        return Sex.MALE if self.sequence % 2 == 1 else Sex.FEMALE

    def __str__(self) -> str:
        return self.value


def generate(region: Region, birth_date: date, sequence: int) -> PermitNumber:
    """Build the number for a region, birth date and sequence (1..999)."""
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError("sequence must be between 1 and 999")
    first17 = f"{region.address_code}{birth_date:%Y%m%d}{sequence:03d}"
    return PermitNumber(first17 + check_character(first17), region, birth_date, sequence)


def problems(value: str) -> list[str]:
    """Everything wrong with a would-be permit number, in words; empty when it is valid."""
    if not _SHAPE.match(value):
        return ["must be 17 digits followed by a digit or X (18 characters)"]
    found: list[str] = []
    if Region.from_address_code(value[:6]) is None:
        found.append("address code must be 810000 (HK), 820000 (MO) or 830000 (TW)")
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        found.append(f"birth date {value[6:14]} is not a calendar date")
    if value[14:17] == "000":
        found.append("sequence 000 is never issued")
    expected = check_character(value[:17])
    if value[17] != expected:
        found.append(f"check character should be {expected}, not {value[17]}")
    return found


def parse(value: str) -> PermitNumber:
    """Parse a permit number, raising ValueError with every problem found."""
    found = problems(value)
    if found:
        raise ValueError("; ".join(found))
    region = Region.from_address_code(value[:6])
    assert region is not None
    birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    return PermitNumber(value, region, birth, int(value[14:17]))


def is_valid(value: str) -> bool:
    """True for a well-formed HK/MO/TW residence permit number with the right check character."""
    return not problems(value)


def check_character_is_valid(value: str) -> bool:
    """Only the MOD 11-2 check, for any GB 11643 number (mainland ones too)."""
    return bool(_SHAPE.match(value)) and value[17] == check_character(value[:17])
