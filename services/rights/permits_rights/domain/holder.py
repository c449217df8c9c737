"""The holder register's rules: one status per card issue, moving only forward.

Statuses are ordered active < expired < reported_lost < superseded < revoked and an issue only
ever moves up that order. Applying the same card event twice, or two events in either order,
therefore ends in the same state: the register is idempotent and tolerant of late events. Issuing
issue n also supersedes every older issue, so a lost `card.superseded` cannot leave an old card
valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from permits_common.domain.card import HolderStatus
from permits_rights.domain.names import normalize_name

STATUS_RANK: dict[HolderStatus, int] = {
    HolderStatus.ACTIVE: 0,
    HolderStatus.EXPIRED: 1,
    HolderStatus.REPORTED_LOST: 2,
    HolderStatus.SUPERSEDED: 3,
    HolderStatus.REVOKED: 4,
}

DETAIL_FIELDS: tuple[str, ...] = (
    "name",
    "name_latin",
    "sex",
    "birth_date",
    "region",
    "valid_from",
    "valid_until",
    "issuing_authority",
    "district",
    "address",
)
"""What the register keeps of a card issue for the agency feeds (JSON values)."""


def advances(current: HolderStatus | None, new: HolderStatus) -> bool:
    """True when `new` is a step forward from `current` (nothing is a step back)."""
    return current is None or STATUS_RANK[new] > STATUS_RANK[current]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One issue of one card reached a new status: what the feeds and webhooks announce."""

    card_number: str
    issue_count: int
    status: HolderStatus
    changed_at: datetime


class Announcement(NamedTuple):
    """A status an issue reached: when it changed, and when every agency topic had it (None
    until the broker acknowledged it)."""

    status: HolderStatus
    changed_at: datetime
    published_at: datetime | None = None


@dataclass(slots=True)
class IssueRecord:
    """The register's knowledge of one card issue: its status, printed details, and every
    status it reached (the feed log of the issue)."""

    issue_count: int
    status: HolderStatus | None = None
    details: dict[str, Any] = field(default_factory=dict)
    timeline: list[Announcement] = field(default_factory=list)

    def take_in(self, announcements: list[Announcement]) -> None:
        """Add statuses known elsewhere: one entry per status, a published one preferred."""
        by_status = {a.status: a for a in self.timeline}
        for announcement in announcements:
            known = by_status.get(announcement.status)
            if known is None or (known.published_at is None and announcement.published_at):
                by_status[announcement.status] = announcement
        self.timeline = sorted(by_status.values(), key=lambda a: STATUS_RANK[a.status])


@dataclass(slots=True)
class CardHistory:
    """Every known issue of one card number; `touched` names the issues changed since loading."""

    card_number: str
    issues: dict[int, IssueRecord] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)

    def _issue(self, issue_count: int) -> IssueRecord:
        record = self.issues.get(issue_count)
        if record is None:
            record = self.issues[issue_count] = IssueRecord(issue_count)
        return record

    def _move(self, issue_count: int, status: HolderStatus, at: datetime) -> list[StatusChange]:
        record = self._issue(issue_count)
        if not advances(record.status, status):
            return []
        record.status = status
        record.take_in([Announcement(status, at)])
        self.touched.add(issue_count)
        return [StatusChange(self.card_number, issue_count, status, at)]

    def record_issued(
        self, issue_count: int, details: dict[str, Any], at: datetime
    ) -> list[StatusChange]:
        """`card.issued`: the issue becomes active (unless a later fact already ended it) and
        every older issue is superseded."""
        record = self._issue(issue_count)
        if not record.details:
            record.details = {k: details.get(k) for k in DETAIL_FIELDS}
            self.touched.add(issue_count)
        changes = self._move(issue_count, HolderStatus.ACTIVE, at)
        for older in sorted(n for n in self.issues if n < issue_count):
            changes += self._move(older, HolderStatus.SUPERSEDED, at)
        return changes

    def record_status(
        self, issue_count: int, status: HolderStatus, at: datetime
    ) -> list[StatusChange]:
        """`card.reported_lost`, `card.superseded`, `card.revoked` or `card.expired`."""
        return self._move(issue_count, status, at)

    def published(self, changes: Sequence[StatusChange], at: datetime) -> None:
        """Every agency topic acknowledged these changes at `at` (other cards' are skipped)."""
        for change in changes:
            record = self.issues.get(change.issue_count)
            if record is not None and change.card_number == self.card_number:
                record.take_in([Announcement(change.status, change.changed_at, at)])

    def merge(self, other: CardHistory) -> None:
        """Take in another view of the same card (a replayed record, or one another worker
        wrote) without moving back: per issue the further status wins, known details stay and
        the timelines join."""
        for issue_count, theirs in other.issues.items():
            mine = self._issue(issue_count)
            if theirs.status is not None and advances(mine.status, theirs.status):
                mine.status = theirs.status
            if not mine.details and theirs.details:
                mine.details = dict(theirs.details)
            mine.take_in(theirs.timeline)

    def statuses(self) -> list[HolderStatus]:
        """The status of every issue that has one (for the register's counts per status)."""
        return [r.status for r in self.issues.values() if r.status is not None]

    def latest(self) -> IssueRecord | None:
        """The newest issue known (the only one that can still be valid)."""
        return self.issues[max(self.issues)] if self.issues else None

    def entry(self) -> RegisterEntry | None:
        """What verification needs of this card, kept in memory for every card."""
        latest = self.latest()
        if latest is None or latest.status is None:
            return None
        details = latest.details or next(
            (
                r.details
                for r in sorted(self.issues.values(), key=lambda r: -r.issue_count)
                if r.details
            ),
            {},
        )
        until = details.get("valid_until") if latest.details else None
        return RegisterEntry(
            issue_count=latest.issue_count,
            status=latest.status,
            name=normalize_name(details.get("name") or ""),
            name_latin=normalize_name(details.get("name_latin") or ""),
            valid_until=date.fromisoformat(until) if until else None,
        )


class RegisterEntry(NamedTuple):
    """One card in the in-memory register: its newest issue, status and the names to match."""

    issue_count: int
    status: HolderStatus
    name: str
    name_latin: str
    valid_until: date | None

    def merged_with(self, newer: RegisterEntry) -> RegisterEntry:
        """Combine two views of the same card without ever moving back: the higher issue wins,
        and within one issue the further status wins (late or repeated records are harmless)."""
        if newer.issue_count != self.issue_count:
            return newer if newer.issue_count > self.issue_count else self
        status = newer.status if advances(self.status, newer.status) else self.status
        return RegisterEntry(
            self.issue_count,
            status,
            newer.name or self.name,
            newer.name_latin or self.name_latin,
            newer.valid_until or self.valid_until,
        )
