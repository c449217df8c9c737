"""GB 11643 numbers with HK/MO/TW address codes: generation, validation and explanations."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permits_common.domain import permit_number as pn
from permits_common.domain.regions import Region, Sex

regions = st.sampled_from(list(Region))
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31))
sequences = st.integers(min_value=1, max_value=999)


def test_known_mainland_example_has_x_check_character() -> None:
    assert pn.check_character("11010519491231002") == "X"
    assert pn.check_character_is_valid("11010519491231002X")


def test_generated_number_has_region_code_birth_date_and_sequence() -> None:
    number = pn.generate(Region.HK, date(1990, 1, 1), 1)
    assert number.value.startswith("81000019900101001")
    assert len(number.value) == 18
    assert pn.parse(number.value) == number
    assert number.sex is Sex.MALE


@given(regions, birth_dates, sequences)
def test_every_generated_number_validates(region: Region, birth: date, sequence: int) -> None:
    number = pn.generate(region, birth, sequence)
    assert pn.is_valid(number.value), pn.problems(number.value)
    assert pn.parse(number.value).region is region


@given(regions, birth_dates, sequences, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_every_single_character_change_is_caught(
    region: Region, birth: date, sequence: int, position: int, replacement: str
) -> None:
    value = pn.generate(region, birth, sequence).value
    if value[position] == replacement:
        return
    changed = value[:position] + replacement + value[position + 1 :]
    assert not pn.is_valid(changed)


def test_problems_explain_what_is_wrong() -> None:
    assert pn.problems("12345") == ["must be 17 digits followed by a digit or X (18 characters)"]
    valid = pn.generate(Region.TW, date(2000, 2, 29), 2).value
    wrong_check = valid[:17] + ("1" if valid[17] == "0" else "0")
    assert f"check character should be {valid[17]}" in pn.problems(wrong_check)[0]
    mainland = "11010519491231002X"
    assert any("address code" in p for p in pn.problems(mainland))
    bad_date = "810000" + "19901332" + "001"
    assert any(
        "not a calendar date" in p for p in pn.problems(bad_date + pn.check_character(bad_date))
    )


@pytest.mark.parametrize("sex", list(Sex))
def test_sequence_parity_follows_sex(sex: Sex) -> None:
    assert all(pn.sequence_matches_sex(s, sex) for s in pn.sequences_for(sex))
    assert pn.nth_sequence(sex, 0) == (1 if sex is Sex.MALE else 2)


def test_sequences_run_out_after_the_last_one() -> None:
    assert pn.nth_sequence(Sex.MALE, 499) == 999
    with pytest.raises(pn.SequenceExhaustedError):
        pn.nth_sequence(Sex.MALE, 500)
    assert pn.nth_sequence(Sex.FEMALE, 498) == 998
    with pytest.raises(pn.SequenceExhaustedError):
        pn.nth_sequence(Sex.FEMALE, 499)
