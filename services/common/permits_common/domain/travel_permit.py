"""Mainland travel permits of HK, MO and TW residents: the number decides who a person is.

One person has one base number for life (renewals add a two-digit count), so the base number is
the key for "at most one open application and one valid card per person".
"""

from __future__ import annotations

import re

from permits_common.domain.regions import Region

_FORMATS: dict[Region, re.Pattern[str]] = {
    Region.HK: re.compile(r"^H\d{8}(\d{2})?$"),
    Region.MO: re.compile(r"^M\d{8}(\d{2})?$"),
    Region.TW: re.compile(r"^\d{8}(\d{2})?$"),
}
_DESCRIPTIONS: dict[Region, str] = {
    Region.HK: "H followed by 8 digits, optionally 2 more (e.g. H12345678)",
    Region.MO: "M followed by 8 digits, optionally 2 more (e.g. M12345678)",
    Region.TW: "8 digits, optionally 2 more (e.g. 12345678)",
}


def region_of(number: str) -> Region | None:
    """The region whose format the number has, or None when it fits none."""
    for region, pattern in _FORMATS.items():
        if pattern.match(number):
            return region
    return None


def problem(number: str, region: Region) -> str | None:
    """Why the number cannot be this region's travel permit, or None when it can."""
    if _FORMATS[region].match(number):
        return None
    other = region_of(number)
    if other is not None:
        return f"a {other.value} travel permit number, but the applicant's region is {region.value}"
    return f"a {region.value} travel permit number is {_DESCRIPTIONS[region]}"


def base_number(number: str) -> str:
    """The lifelong part of the number: 9 characters for HK/MO, 8 digits for TW."""
    return number[:8] if number[:1].isdigit() else number[:9]
