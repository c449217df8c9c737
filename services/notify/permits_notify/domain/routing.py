"""What to do after a send attempt failed: retry later, try the other channel, or give up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from permits_notify.domain.messages import Channel
from permits_notify.domain.scheduling import RetryPolicy


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A temporary failure with attempts left: the same channel, later."""

    at: datetime


@dataclass(frozen=True, slots=True)
class FallBack:
    """This channel is done for; the other one may still reach the applicant."""

    channel: Channel


@dataclass(frozen=True, slots=True)
class GiveUp:
    """No channel left: the failure is recorded and published."""


AfterFailure = RetryLater | FallBack | GiveUp


def after_failure(
    *,
    permanent: bool,
    attempts: int,
    now: datetime,
    retry: RetryPolicy,
    fallback: Channel | None,
) -> AfterFailure:
    """Temporary failures retry with backoff; permanent ones (or exhausted retries) fall back."""
    if not permanent:
        at = retry.next_attempt(attempts, now)
        if at is not None:
            return RetryLater(at)
    if fallback is not None:
        return FallBack(fallback)
    return GiveUp()
