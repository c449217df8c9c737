"""The in-memory register every verification is answered from: one entry per card number.

A dict lookup per verification keeps answers fast (no store round trip); status counts are kept
incrementally so aggregate figures never need a scan.
"""

from __future__ import annotations

from collections import Counter

from permits_common.domain.card import HolderStatus
from permits_rights.domain.holder import RegisterEntry


class RegisterIndex:
    """Card number → newest issue's entry; merging makes repeated or late updates harmless."""

    def __init__(self) -> None:
        self._entries: dict[str, RegisterEntry] = {}
        self._by_status: Counter[HolderStatus] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, card_number: str) -> RegisterEntry | None:
        """The entry of a card number, if known."""
        return self._entries.get(card_number)

    def apply(self, card_number: str, entry: RegisterEntry) -> None:
        """Merge a (possibly stale or repeated) entry into the register."""
        current = self._entries.get(card_number)
        merged = entry if current is None else current.merged_with(entry)
        if merged == current:
            return
        if current is not None:
            self._by_status[current.status] -= 1
        self._by_status[merged.status] += 1
        self._entries[card_number] = merged

    def status_counts(self) -> dict[str, int]:
        """How many card numbers stand at each status (by their newest issue)."""
        return {status.value: self._by_status.get(status, 0) for status in HolderStatus}
