"""Webhook signatures: the agency proves a body came from us with the secret it shares with us."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Permits-Signature"


def sign(body: bytes, secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, the value of the signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, secret: str, header: str) -> bool:
    """What a receiver checks, in constant time."""
    return hmac.compare_digest(sign(body, secret), header)
