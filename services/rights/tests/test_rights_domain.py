"""Unit tests of the rights domain: status transitions, names, verification, throttling."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from permits_common.domain.card import HolderStatus
from permits_rights.domain.holder import CardHistory, RegisterEntry
from permits_rights.domain.names import name_matches, normalize_name
from permits_rights.domain.register import RegisterIndex
from permits_rights.domain.signature import sign, signature_valid
from permits_rights.domain.throttle import TokenBucket, backoff_delay
from permits_rights.domain.verification import verify

AT = datetime(2026, 11, 1, tzinfo=UTC)
DETAILS = {"name": "陈大文", "name_latin": "CHAN TAI MAN", "valid_until": "2031-11-01"}


def statuses(history: CardHistory) -> dict[int, HolderStatus | None]:
    return {n: r.status for n, r in sorted(history.issues.items())}


def test_issue_lost_reissue_sequence() -> None:
    card = CardHistory("810000199001010012")
    assert [c.status for c in card.record_issued(1, DETAILS, AT)] == ["active"]
    assert [c.status for c in card.record_status(1, HolderStatus.REPORTED_LOST, AT)] == [
        "reported_lost"
    ]
    assert [c.status for c in card.record_status(1, HolderStatus.SUPERSEDED, AT)] == ["superseded"]
    assert [(c.issue_count, c.status) for c in card.record_issued(2, DETAILS, AT)] == [
        (2, "active")
    ]
    assert statuses(card) == {1: "superseded", 2: "active"}


def test_repeated_events_change_nothing() -> None:
    card = CardHistory("n")
    card.record_issued(1, DETAILS, AT)
    assert card.record_issued(1, DETAILS, AT) == []
    card.record_status(1, HolderStatus.REVOKED, AT)
    assert card.record_status(1, HolderStatus.REVOKED, AT) == []
    assert card.record_status(1, HolderStatus.EXPIRED, AT) == []  # never moves back
    assert statuses(card) == {1: "revoked"}


def test_newer_issue_supersedes_older_even_without_card_superseded() -> None:
    card = CardHistory("n")
    card.record_issued(1, DETAILS, AT)
    changes = card.record_issued(2, DETAILS, AT)
    assert {(c.issue_count, c.status) for c in changes} == {(2, "active"), (1, "superseded")}


EVENTS = [
    ("issued", 1),
    ("reported_lost", 1),
    ("superseded", 1),
    ("issued", 2),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(EVENTS)))))
def test_any_arrival_order_converges(order: tuple[int, ...]) -> None:
    card = CardHistory("n")
    for index in order:
        kind, issue = EVENTS[index]
        if kind == "issued":
            card.record_issued(issue, DETAILS, AT)
        else:
            card.record_status(issue, HolderStatus(kind), AT)
    assert statuses(card) == {1: "superseded", 2: "active"}
    entry = card.entry()
    assert entry is not None
    assert (entry.issue_count, entry.status) == (2, "active")


def test_old_issue_event_after_newer_keeps_latest_entry() -> None:
    card = CardHistory("n")
    card.record_issued(2, DETAILS, AT)
    card.record_status(1, HolderStatus.REPORTED_LOST, AT)
    entry = card.entry()
    assert entry is not None
    assert (entry.issue_count, entry.status) == (2, "active")


@pytest.mark.parametrize(
    ("presented", "expected"),
    [
        ("  chan   tai man ", True),
        ("CHAN TAI MAN", True),
        ("ＣＨＡＮ ＴＡＩ ＭＡＮ", True),
        ("陈大文", True),
        (" 陈大文 ", True),
        ("陈小文", False),
        ("CHAN TAI", False),
        ("", False),
    ],
)
def test_name_normalisation(presented: str, expected: bool) -> None:
    assert name_matches(presented, "陈大文", "Chan Tai Man") is expected


def test_normalize_collapses_and_folds() -> None:
    assert normalize_name("  Chan\tTai  MAN ") == "chan tai man"


ENTRY = RegisterEntry(2, HolderStatus.ACTIVE, "陈大文", "chan tai man", date(2031, 11, 1))
TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("entry", "name", "issue", "today", "answer"),
    [
        (
            ENTRY,
            "陈大文",
            2,
            TODAY,
            {"valid": True, "status": "active", "valid_until": "2031-11-01"},
        ),
        (
            ENTRY,
            "chan tai man",
            None,
            TODAY,
            {"valid": True, "status": "active", "valid_until": "2031-11-01"},
        ),
        (ENTRY, "陈大文", 1, TODAY, {"valid": False, "status": "superseded"}),
        (ENTRY, "陈大文", 3, TODAY, {"valid": False, "status": "not_found"}),
        (ENTRY, "someone else", 2, TODAY, {"valid": False, "status": "name_mismatch"}),
        (None, "陈大文", None, TODAY, {"valid": False, "status": "not_found"}),
        (
            ENTRY,
            "陈大文",
            2,
            date(2031, 11, 1),
            {"valid": True, "status": "active", "valid_until": "2031-11-01"},
        ),
        (ENTRY, "陈大文", 2, date(2031, 11, 2), {"valid": False, "status": "expired"}),
        (
            ENTRY._replace(status=HolderStatus.REPORTED_LOST),
            "陈大文",
            None,
            TODAY,
            {"valid": False, "status": "reported_lost"},
        ),
        (
            ENTRY._replace(status=HolderStatus.REVOKED),
            "陈大文",
            2,
            TODAY,
            {"valid": False, "status": "revoked"},
        ),
        # A wrong name learns nothing about the card's status.
        (
            ENTRY._replace(status=HolderStatus.REVOKED),
            "x",
            2,
            TODAY,
            {"valid": False, "status": "name_mismatch"},
        ),
    ],
)
def test_verification_answers(
    entry: RegisterEntry | None, name: str, issue: int | None, today: date, answer: object
) -> None:
    assert verify(entry, name, issue, today).as_json() == answer


def test_register_merge_never_moves_back() -> None:
    index = RegisterIndex()
    index.apply("n", ENTRY)
    index.apply("n", ENTRY._replace(issue_count=1))
    index.apply("n", ENTRY._replace(status=HolderStatus.REVOKED))
    index.apply("n", ENTRY)
    got = index.get("n")
    assert got is not None
    assert (got.issue_count, got.status) == (2, "revoked")
    assert index.status_counts()["revoked"] == 1
    assert sum(index.status_counts().values()) == 1


def test_signature_roundtrip() -> None:
    body = b'{"id":"1"}'
    header = sign(body, "s3cret")
    assert header.startswith("sha256=")
    assert signature_valid(body, "s3cret", header)
    assert not signature_valid(body + b" ", "s3cret", header)
    assert not signature_valid(body, "other", header)


def test_signature_known_vector() -> None:
    # RFC 4231 test case 2: HMAC-SHA256(key="Jefe", "what do ya want for nothing?")
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(b"what do ya want for nothing?", "Jefe") == f"sha256={expected}"


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert bucket.take(0.0) == 0
    assert bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0


def test_backoff_grows_and_caps() -> None:
    assert [backoff_delay(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
