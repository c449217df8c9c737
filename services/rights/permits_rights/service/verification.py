"""Verification requests: per-agency rate limit, then a lookup in the in-memory register."""

from __future__ import annotations

import time
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.agencies import Agency
from permits_rights.domain.register import RegisterIndex
from permits_rights.domain.throttle import TokenBucket
from permits_rights.domain.verification import Verdict, verify
from permits_rights.service.metrics import VERIFY_REQUESTS


class Verifier:
    """Answers from memory: no store or broker on the request path."""

    def __init__(self, index: RegisterIndex, clock: Clock, rate: float, burst: float) -> None:
        self._index = index
        self._clock = clock
        self._buckets = {agency: TokenBucket(rate, burst) for agency in Agency}
        self._counters: dict[tuple[Agency, str], Any] = {}

    def retry_after(self, agency: Agency) -> float:
        """0 when the agency may verify now; otherwise seconds to wait (and the request counts
        as rate limited)."""
        wait = self._buckets[agency].take(time.monotonic())
        if wait > 0:
            self._counter(agency, "rate_limited").inc()
        return wait

    def verify(self, agency: Agency, number: str, name: str, issue_count: int | None) -> Verdict:
        """The contract's answer for one presented card."""
        verdict = verify(
            self._index.get(number.strip().upper()), name, issue_count, self._clock.today()
        )
        self._counter(agency, verdict.status).inc()
        return verdict

    def _counter(self, agency: Agency, result: str) -> Any:
        """The request counter's child for (agency, result), looked up once."""
        child = self._counters.get((agency, result))
        if child is None:
            child = self._counters[agency, result] = VERIFY_REQUESTS.labels(agency.value, result)
        return child
