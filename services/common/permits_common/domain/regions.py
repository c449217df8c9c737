"""The three regions whose residents may hold a residence permit, and their address codes."""

from __future__ import annotations

from enum import StrEnum


class Region(StrEnum):
    """Where the applicant is a resident of; decides the permit's address code."""

    HK = "HK"
    MO = "MO"
    TW = "TW"

    @property
    def address_code(self) -> str:
        """The six-digit address code that opens every permit number of this region."""
        return _ADDRESS_CODES[self]

    @classmethod
    def from_address_code(cls, code: str) -> Region | None:
        """The region a permit number's first six digits point to, if any."""
        for region, region_code in _ADDRESS_CODES.items():
            if region_code == code:
                return region
        return None


_ADDRESS_CODES: dict[Region, str] = {
    Region.HK: "810000",
    Region.MO: "820000",
    Region.TW: "830000",
}


class Sex(StrEnum):
    """As printed on the card; decides the parity of the permit number's sequence."""

    MALE = "M"
    FEMALE = "F"
