"""Token buckets for per-agency rate limits, and the webhook retry schedule."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`rate` requests per second on average, bursts up to `burst`; time is passed in."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 when a request may pass (a token is spent), else seconds until one is available."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff after the `attempt`-th failure: base, 2·base, 4·base, ... up to cap."""
    return float(min(cap, base * 2 ** max(attempt - 1, 0)))
