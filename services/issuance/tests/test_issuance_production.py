"""Production orders: stable ids, capped backoff, HMAC signatures."""

from __future__ import annotations

import pytest

from permits_issuance.domain.production import order_id, retry_delay, sign, signature_matches


def test_order_id_is_stable_per_application_and_issue() -> None:
    assert order_id("app-1", 1) == order_id("app-1", 1)
    assert order_id("app-1", 1) != order_id("app-1", 2)


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 2.0, 30.0) for n in (1, 2, 3, 4, 5, 60)] == [2, 4, 8, 16, 30, 30]
    with pytest.raises(ValueError, match="1-based"):
        retry_delay(0, 2.0, 30.0)


def test_signatures() -> None:
    body = b'{"order_id":"x"}'
    header = sign(b"secret", body)
    assert header.startswith("sha256=")
    assert signature_matches(b"secret", body, header)
    assert not signature_matches(b"other", body, header)
    assert not signature_matches(b"secret", body + b" ", header)
    assert not signature_matches(b"secret", body, None)
