"""Handle a batch of events concurrently across subjects and in order within each subject.

Kafka keeps order per key (the event's subject: an application id, a card number), and that is
the only order the handlers rely on. Handling one event at a time leaves a consumer waiting on
one store round trip after another; overlapping different subjects' events keeps several in
flight, so a batch takes about as long as its longest subject, not the sum of all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from permits_common.events.envelope import Event

DEFAULT_CONCURRENCY = 8
T = TypeVar("T")


def group_by_subject(items: Iterable[T], subject: Callable[[T], str | None]) -> list[list[T]]:
    """The items of each subject, in their original order; subjects in order of first sight."""
    groups: dict[str | None, list[T]] = {}
    for item in items:
        groups.setdefault(subject(item), []).append(item)
    return list(groups.values())


async def handle_by_subject(
    events: Iterable[Event[Any]],
    handle: Callable[[Event[Any]], Awaitable[None]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """Run `handle` on every event: one subject's events one after the other, up to
    `concurrency` subjects at once. Returns when all are handled; the first error propagates
    after the others have finished, so no handler is left running."""
    slots = asyncio.Semaphore(concurrency)

    async def in_order(group: list[Event[Any]]) -> None:
        async with slots:
            for event in group:
                await handle(event)

    results = await asyncio.gather(
        *(in_order(group) for group in group_by_subject(events, lambda e: e.subject)),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
