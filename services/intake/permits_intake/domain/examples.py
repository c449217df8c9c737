"""The application body of contract.md, and fresh variations of it.

One definition serves the OpenAPI example, the demo, the tests and the benchmarks, so they all
send what a clerk's tool really sends.
"""

from __future__ import annotations

import copy
from typing import Any

CONTRACT_EXAMPLE: dict[str, Any] = {
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
        "travel_permit_number": "H12345678",
        "phone": "+85291234567",
        "email": "chan@example.com",
        "language": "zh-Hant",
    },
    "guardian": None,
    "residence": {"address": "历下区科院路6号", "district": "历下区", "since": "2025-01-10"},
    "bases": [{"type": "employment", "evidence": "labour contract 2025-0117"}],
    "biometrics": {"photo_ref": "ph-001", "fingerprints_ref": "fp-001", "fingerprint_waiver": None},
}


def application_body(**changes: Any) -> dict[str, Any]:
    """A copy of the contract example with changes; `a__b=value` sets a nested field
    (e.g. `applicant__travel_permit_number="H00000001"`, `residence__since="2025-01-01"`)."""
    body = copy.deepcopy(CONTRACT_EXAMPLE)
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body
