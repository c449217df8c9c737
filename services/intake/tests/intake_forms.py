"""Building valid application bodies for intake tests, varied per test."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from permits_common.domain import permit_number
from permits_common.domain.regions import Region
from permits_intake.domain.examples import application_body as example_body


def unique_travel_permit(region: str = "HK") -> str:
    """A fresh travel permit number, so tests sharing the store never collide on a person."""
    digits = f"{random.randrange(10**8):08d}"
    return {"HK": "H", "MO": "M", "TW": ""}[region] + digits


def unique_card_number(birth: date = date(1990, 1, 1)) -> str:
    """A valid, random HK permit number."""
    return permit_number.generate(Region.HK, birth, random.randrange(1, 999)).value


def application_body(**overrides: Any) -> dict[str, Any]:
    """The contract.md example, with a fresh travel permit number and any overrides."""
    return example_body(**{"applicant__travel_permit_number": unique_travel_permit(), **overrides})
