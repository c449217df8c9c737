"""The Faust agent on permits.cards.v1: batches of card events into the holder register.

After every partition assignment the agent first waits until the in-memory register holds every
changelog record written so far: the cards it takes over may have been changed a moment ago by
the worker that held them before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from permits_common.events.envelope import Event
from permits_common.kafka import dead_letter_data
from permits_common.logs import get_logger
from permits_common.streams import event_batches, raw_topic, retry_forever
from permits_rights.service.runtime import Runtime

log = get_logger("cards-agent")

CARDS_BATCH = 1000
"""Card events per batch: each one is a dozen feed events and as many audit entries, and
every batch waits for the broker three or four times, so larger batches cost less per card
(an import brings thousands a second); a quiet stream still hands over what it has at once."""


class _ReplayedRecord:
    """A decoded event seen as a raw record, for the dead-letter description."""

    def __init__(self, event: Event[Any]) -> None:
        self.topic = event.topic
        self.partition: int | None = None
        self.offset: int | None = None
        self.key = event.key
        self.value = event.to_json()


def install_agent(app: faust.App, runtime: Runtime) -> None:
    """Register the cards agent on the Faust app."""
    cards = raw_topic(app, runtime.settings.cards_topic)
    reassigned = asyncio.Event()

    def assigned(_app: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        reassigned.set()

    app.on_partitions_assigned.connect(assigned)

    async def process(stream: Any) -> None:
        await runtime.started.wait()
        async for batch in event_batches(
            stream,
            service="rights",
            consumer=runtime.settings.rights_group,
            publisher=runtime.publisher,
            processed=runtime.processed,
            max_batch=CARDS_BATCH,
        ):
            if reassigned.is_set():
                reassigned.clear()
                await runtime.replica.catch_up()
            try:
                await retry_forever(lambda b=batch: runtime.updates.handle(b))
            except Exception:
                await _one_by_one(runtime, batch)

    app.agent(cards, name="cards")(process)


async def _one_by_one(runtime: Runtime, batch: list[Event[Any]]) -> None:
    """A batch failed for a non-transient reason: find the event at fault and dead-letter it."""
    for event in batch:
        try:
            await retry_forever(lambda e=event: runtime.updates.handle([e]))
        except Exception as exc:
            log.error("card event refused, dead-lettered", type=event.type, error=repr(exc))
            data = dead_letter_data(
                _ReplayedRecord(event), runtime.settings.rights_group, f"{type(exc).__name__}"
            )
            await retry_forever(
                lambda d=data: runtime.publisher.publish(runtime.publisher.event(d))
            )
