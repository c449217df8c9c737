"""Production orders to the card production centre: identity, retry backoff and signatures.

An order is identified by application id and issue count, so a retry after a failure (or after
a restart) is the same order, and the centre can deduplicate it.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from permits_common.events.envelope import derived_event_id

SIGNATURE_HEADER = "X-Permits-Signature"


class OrderState(StrEnum):
    """`pending`: to be sent at `next_attempt_at`; `sent`: waiting for the callback until
    `next_attempt_at`, then sent again. The centre's confirmation is recorded apart (the
    order's completion), so no attempt written later can undo it."""

    PENDING = "pending"
    SENT = "sent"


def order_id(application_id: str, issue_count: int) -> str:
    """The production order id, derived so every retry and restart names the same order."""
    return derived_event_id("production-order", application_id, issue_count)


def retry_delay(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Exponential backoff after the `attempt`-th failed attempt (1-based), capped."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    return float(min(max_seconds, base_seconds * 2 ** min(attempt - 1, 30)))


def sign(secret: bytes, body: bytes) -> str:
    """`sha256=<hex HMAC>` of the raw body, as sent in the signature header."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header against the raw body."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())
