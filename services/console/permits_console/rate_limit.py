"""A token bucket per client address, for the applicant's status page (no sign-in there, so
guessing application ids and permit numbers is slowed down per client)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000


class ClientRateLimit:
    """`rate_per_minute` look-ups per client, up to `burst` at once; the oldest idle clients are
    forgotten beyond MAX_CLIENTS so memory stays bounded."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Take one token for this client; False when its bucket is empty."""
        now = self._clock()
        tokens, seen = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - seen) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Seconds until one more look-up is allowed to an empty bucket."""
        return max(1, round(1.0 / self._rate))
