"""Reference data shipped with the code: the sixteen acceptance points of the Jinan notice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class AcceptancePoint:
    """A police acceptance point (受理点) and the branch that signs its cards."""

    code: str
    name: str
    district: str
    address: str
    phone: str
    issuing_authority: str


@cache
def acceptance_points() -> tuple[AcceptancePoint, ...]:
    """All sixteen points, in the order of the notice's attachment."""
    raw = resources.files(__package__).joinpath("acceptance_points.json").read_text("utf-8")
    return tuple(AcceptancePoint(**row) for row in json.loads(raw))


@cache
def acceptance_points_by_code() -> dict[str, AcceptancePoint]:
    """Lookup by the stable uppercase code (e.g. `LIXIA`)."""
    return {point.code: point for point in acceptance_points()}
