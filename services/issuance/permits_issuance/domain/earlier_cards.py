"""Cards issued by the earlier system (2018 onward): what a line of the export must say.

Each line is checked with the rules a card issued here obeys: the permit number's format and
check character, its address code, birth date and sequence parity agreeing with the region,
birth date and sex on the line, a travel permit number of the right region, five years of
validity from a day on or after the national measures took effect, a known issuing branch and
a holder status the register knows. A bad line is refused with a stable code and a message that
names the field, never its value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from permits_common.domain import permit_number, travel_permit
from permits_common.domain.card import HolderStatus, valid_until
from permits_common.domain.regions import Region, Sex
from permits_common.reference import acceptance_points

FIRST_ISSUE_DAY = date(2018, 9, 1)
"""《港澳台居民居住证申领发放办法》 in force: no earlier card can exist."""

IMPORTABLE_STATUSES = frozenset(
    {
        HolderStatus.ACTIVE,
        HolderStatus.REPORTED_LOST,
        HolderStatus.REVOKED,
        HolderStatus.SUPERSEDED,
    }
)
INVALID_RECORD = "invalid_record"
CARD_NUMBER_INVALID = "card_number_invalid"
CONFLICTING_RECORD = "conflicting_record"
_TEXT_FIELDS = ("card_number", "name", "travel_permit_number", "issuing_authority")


class LineRejectedError(Exception):
    """The line cannot enter the register: a contract code and a message without values."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class EarlierCard:
    """One card issue of the earlier system, checked."""

    card_number: str
    issue_count: int
    name: str
    name_latin: str | None
    sex: Sex
    birth_date: date
    region: Region
    travel_permit_number: str
    valid_from: date
    valid_until: date
    issuing_authority: str
    status: HolderStatus

    @property
    def person(self) -> str:
        """The travel-permit base number: who the person is, for life."""
        return travel_permit.base_number(self.travel_permit_number)

    @property
    def acceptance_point(self) -> str:
        """The point run by the branch that signed the card."""
        return _POINT_OF_AUTHORITY[self.issuing_authority]

    def digest(self) -> str:
        """A fingerprint of every field: the same number and issue count with another digest
        is a conflicting record."""
        fields = {name: str(getattr(self, name)) for name in self.__slots__}
        return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


_POINT_OF_AUTHORITY = {point.issuing_authority: point.code for point in acceptance_points()}


def parse_line(raw: bytes) -> EarlierCard:
    """Check one JSON line; LineRejectedError with the contract's code when it is not a card."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LineRejectedError(INVALID_RECORD, "not a JSON object") from None
    if not isinstance(body, dict):
        raise LineRejectedError(INVALID_RECORD, "not a JSON object")
    for name in _TEXT_FIELDS:
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise LineRejectedError(INVALID_RECORD, f"{name} is missing or not text")
    name_latin = body.get("name_latin")
    if name_latin is not None and not isinstance(name_latin, str):
        raise LineRejectedError(INVALID_RECORD, "name_latin is not text")
    issue_count = body.get("issue_count")
    if not isinstance(issue_count, int) or isinstance(issue_count, bool) or issue_count < 1:
        raise LineRejectedError(INVALID_RECORD, "issue_count must be a whole number from 1")
    sex = _choice(Sex, body.get("sex"), "sex")
    region = _choice(Region, body.get("region"), "region")
    status = _choice(HolderStatus, body.get("status"), "status")
    if status not in IMPORTABLE_STATUSES:
        raise LineRejectedError(
            INVALID_RECORD, "status must be active, reported_lost, revoked or superseded"
        )
    birth_date = _day(body.get("birth_date"), "birth_date")
    valid_from = _day(body.get("valid_from"), "valid_from")
    until = _day(body.get("valid_until"), "valid_until")
    card = EarlierCard(
        card_number=body["card_number"].strip().upper(),
        issue_count=issue_count,
        name=body["name"].strip(),
        name_latin=name_latin.strip() if name_latin else None,
        sex=sex,
        birth_date=birth_date,
        region=region,
        travel_permit_number=body["travel_permit_number"].strip().upper(),
        valid_from=valid_from,
        valid_until=until,
        issuing_authority=body["issuing_authority"].strip(),
        status=status,
    )
    _check_number(card)
    _check_card(card)
    return card


def _choice(kind: Any, value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise LineRejectedError(INVALID_RECORD, f"{field} must be one of {allowed}") from None


def _day(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise LineRejectedError(INVALID_RECORD, f"{field} must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LineRejectedError(INVALID_RECORD, f"{field} must be a date YYYY-MM-DD") from None


def _check_number(card: EarlierCard) -> None:
    found = permit_number.problems(card.card_number)
    if found:
        raise LineRejectedError(CARD_NUMBER_INVALID, "card_number: " + "; ".join(found))
    number = permit_number.parse(card.card_number)
    if number.region is not card.region:
        raise LineRejectedError(CARD_NUMBER_INVALID, "card_number's address code is not region's")
    if number.birth_date != card.birth_date:
        raise LineRejectedError(CARD_NUMBER_INVALID, "card_number's birth date is not birth_date")
    if number.sex is not card.sex:
        raise LineRejectedError(CARD_NUMBER_INVALID, "card_number's sequence parity is not sex")


def _check_card(card: EarlierCard) -> None:
    problem = travel_permit.problem(card.travel_permit_number, card.region)
    if problem is not None:
        raise LineRejectedError(INVALID_RECORD, f"travel_permit_number: {problem}")
    if card.valid_from < FIRST_ISSUE_DAY:
        raise LineRejectedError(INVALID_RECORD, "valid_from is before 2018-09-01")
    if card.valid_from <= card.birth_date:
        raise LineRejectedError(INVALID_RECORD, "valid_from is not after birth_date")
    if card.valid_until != valid_until(card.valid_from):
        raise LineRejectedError(INVALID_RECORD, "valid_until is not five years after valid_from")
    if card.issuing_authority not in _POINT_OF_AUTHORITY:
        raise LineRejectedError(INVALID_RECORD, "issuing_authority is not a Jinan branch")
