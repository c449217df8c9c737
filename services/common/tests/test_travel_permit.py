"""Mainland travel permit numbers per region, and the lifelong base number."""

import pytest

from permits_common.domain import travel_permit as tp
from permits_common.domain.regions import Region


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("H12345678", Region.HK),
        ("H1234567801", Region.HK),
        ("M12345678", Region.MO),
        ("M1234567802", Region.MO),
        ("12345678", Region.TW),
        ("1234567801", Region.TW),
    ],
)
def test_valid_numbers_match_their_region(number: str, region: Region) -> None:
    assert tp.problem(number, region) is None
    assert tp.region_of(number) is region


@pytest.mark.parametrize(
    ("number", "region", "hint"),
    [
        ("H12345678", Region.MO, "a HK travel permit number"),
        ("12345678", Region.HK, "a TW travel permit number"),
        ("H1234567", Region.HK, "H followed by 8 digits"),
        ("H123456789", Region.HK, "H followed by 8 digits"),
        ("1234567", Region.TW, "8 digits"),
        ("h12345678", Region.HK, "H followed by 8 digits"),
    ],
)
def test_wrong_numbers_are_explained(number: str, region: Region, hint: str) -> None:
    problem = tp.problem(number, region)
    assert problem is not None
    assert hint in problem


def test_base_number_drops_the_renewal_count() -> None:
    assert tp.base_number("H1234567801") == "H12345678"
    assert tp.base_number("M12345678") == "M12345678"
    assert tp.base_number("1234567801") == "12345678"
