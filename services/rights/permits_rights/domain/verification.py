"""The verification answer of contract.md, decided from one register entry.

The name is checked before anything about the card is revealed: someone who does not know the
holder's name learns only `name_mismatch` (or `not_found`), never the card's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from permits_common.domain.card import HolderStatus
from permits_rights.domain.holder import RegisterEntry
from permits_rights.domain.names import normalize_name

VerificationStatus = Literal[
    "active", "expired", "reported_lost", "superseded", "revoked", "not_found", "name_mismatch"
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Exactly the contract's fields: `valid`, `status`, and `valid_until` only when valid."""

    valid: bool
    status: VerificationStatus
    valid_until: date | None = None

    def as_json(self) -> dict[str, object]:
        """The response body; nothing beyond the contract."""
        body: dict[str, object] = {"valid": self.valid, "status": self.status}
        if self.valid and self.valid_until is not None:
            body["valid_until"] = self.valid_until.isoformat()
        return body


def verify(entry: RegisterEntry | None, name: str, issue_count: int | None, today: date) -> Verdict:
    """Answer for a card presented with a name and, optionally, the issue count printed on it.

    An older issue count is `superseded`; an active card past the end of its `valid_until` day is
    `expired` even before `card.expired` arrives.
    """
    if entry is None or (issue_count is not None and issue_count > entry.issue_count):
        return Verdict(False, "not_found")
    known = [n for n in (entry.name, entry.name_latin) if n]
    if known and normalize_name(name) not in known:
        return Verdict(False, "name_mismatch")
    if issue_count is not None and issue_count < entry.issue_count:
        return Verdict(False, "superseded")
    status = entry.status
    if status is HolderStatus.ACTIVE:
        if entry.valid_until is not None and today > entry.valid_until:
            return Verdict(False, "expired")
        return Verdict(True, "active", entry.valid_until)
    return Verdict(False, status.value)  # type: ignore[arg-type]
