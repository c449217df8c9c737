"""Building valid application bodies for intake tests, varied per test."""

from __future__ import annotations

import copy
import random
from datetime import date
from typing import Any

from permits_common.domain import permit_number
from permits_common.domain.regions import Region


def unique_travel_permit(region: str = "HK") -> str:
    """A fresh travel permit number, so tests sharing the store never collide on a person."""
    digits = f"{random.randrange(10**8):08d}"
    return {"HK": "H", "MO": "M", "TW": ""}[region] + digits


def unique_card_number(birth: date = date(1990, 1, 1)) -> str:
    """A valid, random HK permit number."""
    return permit_number.generate(Region.HK, birth, random.randrange(1, 999)).value


def application_body(**overrides: Any) -> dict[str, Any]:
    """The contract.md example, with a fresh travel permit number and any overrides."""
    body: dict[str, Any] = {
        "kind": "first",
        "card_number": None,
        "renewal_reason": None,
        "acceptance_point": "LIXIA",
        "applicant": {
            "name": "陈大文",
            "name_latin": "CHAN TAI MAN",
            "sex": "M",
            "birth_date": "1990-01-01",
            "region": "HK",
            "travel_permit_number": unique_travel_permit(),
            "phone": "+85291234567",
            "email": "chan@example.com",
            "language": "zh-Hant",
        },
        "guardian": None,
        "residence": {"address": "历下区科院路6号", "district": "历下区", "since": "2025-01-10"},
        "bases": [{"type": "employment", "evidence": "labour contract 2025-0117"}],
        "biometrics": {
            "photo_ref": "ph-001",
            "fingerprints_ref": "fp-001",
            "fingerprint_waiver": None,
        },
    }
    body = copy.deepcopy(body)
    for path, value in overrides.items():
        target = body
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body
