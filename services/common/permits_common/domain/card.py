"""Card facts every service agrees on: validity period, holder status, application states."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

VALIDITY_YEARS = 5


def valid_until(valid_from: date, years: int = VALIDITY_YEARS) -> date:
    """Same month and day `years` later, 29 February becoming 28 February (as on ID cards)."""
    try:
        return valid_from.replace(year=valid_from.year + years)
    except ValueError:
        return valid_from.replace(year=valid_from.year + years, day=28)


def is_within_validity(valid_from: date, valid_until_day: date, today: date) -> bool:
    """The card is valid from its first day through the end of its last day."""
    return valid_from <= today <= valid_until_day


class HolderStatus(StrEnum):
    """What an agency is told about one issue of a card."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REPORTED_LOST = "reported_lost"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


class ApplicationKind(StrEnum):
    """First application, renewal (换领) or reissue after loss (补领)."""

    FIRST = "first"
    RENEWAL = "renewal"
    REISSUE = "reissue"


class RenewalReason(StrEnum):
    """Why a holder renews: the card expires, is damaged, or a printed field changed."""

    EXPIRING = "expiring"
    DAMAGED = "damaged"
    DETAILS_CHANGED = "details_changed"


class ApplicationStatus(StrEnum):
    """An application's life: accepted → approved → in_production → ready → collected
    (a posted card goes ready → dispatched → collected)."""

    ACCEPTED = "accepted"
    APPROVED = "approved"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    DISPATCHED = "dispatched"
    COLLECTED = "collected"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        """Still on its way to a card, so the person may not open another application."""
        return self in _OPEN_STATES


_OPEN_STATES = frozenset(
    {
        ApplicationStatus.ACCEPTED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
        ApplicationStatus.DISPATCHED,
    }
)

_ORDER = {status: rank for rank, status in enumerate(ApplicationStatus)}


def status_advances(current: ApplicationStatus, new: ApplicationStatus) -> bool:
    """True when `new` lies after `current`; events arriving late never move an application back."""
    if current in (ApplicationStatus.COLLECTED, ApplicationStatus.REJECTED):
        return False
    return _ORDER[new] > _ORDER[current]


class CollectionMethod(StrEnum):
    """领证方式: at the acceptance point (the default) or posted to the applicant (邮寄领取)."""

    COUNTER = "counter"
    POST = "post"


class SlaState(StrEnum):
    """Where an application stands against its legal deadline."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
