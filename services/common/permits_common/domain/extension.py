"""Extension of the issuing deadline (延长): where transport is difficult the time may be
extended, by at most 10 working days in total, before the card is ready (港澳台居民居住证申领
发放办法). Intake checks it when an operator asks; issuance, which owns the clock, checks it
again when it moves the due date.
"""

from __future__ import annotations

from permits_common.domain.card import ApplicationStatus

MAX_EXTENSION_WORKING_DAYS = 10
"""延长: at most 10 working days in total, however many times it is granted."""

STATUSES_BEFORE_READY = (
    ApplicationStatus.ACCEPTED,
    ApplicationStatus.APPROVED,
    ApplicationStatus.IN_PRODUCTION,
)
"""The statuses in which an extension may still be granted."""


def extension_fits(granted_so_far: int, requested: int) -> bool:
    """True when `requested` more working days keep the total within the legal maximum."""
    return requested >= 1 and granted_so_far + requested <= MAX_EXTENSION_WORKING_DAYS


def extension_in_time(status: ApplicationStatus) -> bool:
    """An extension is granted before the card is ready (and never for a refused application)."""
    return status in STATUSES_BEFORE_READY
