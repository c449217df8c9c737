"""Production orders: sent to the centre, retried with backoff until a card is confirmed.

Orders live in the store with a state and `next_attempt_at`, so a restart loses none; a timer
sends what is due. The first attempt belongs to the worker whose insert created the order;
every later one is a lease (an insert keyed by order and attempt number), so two workers never
send the same attempt twice. An order the centre refused (5xx), reported as
failed, or never called back about within the timeout is sent again; it is never dropped.

Every write is by `_id`. The timer reads `order_schedule`, which holds only the orders still
open (the local store reads a whole collection for any query not by `_id`, and the order log
grows with every card). The centre's "ready" is final: it records the order's completion,
which no later write touches, so an attempt recorded after the callback cannot reopen the order.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from permits_common.clock import Clock
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import ApplicationInProduction
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_common.mongo import Document, insert_new, insert_once
from permits_issuance.adapters.production_centre import (
    ProductionCentreClient,
    ProductionRequest,
)
from permits_issuance.adapters.store import (
    IssuanceStore,
    batch_tag,
    delete_together,
    token_of,
)
from permits_issuance.config import IssuanceSettings
from permits_issuance.domain.production import OrderState, order_id, retry_delay
from permits_issuance.metrics import PRODUCTION_ATTEMPTS
from permits_issuance.service.issue import IssueService

log = get_logger("production")
_SCAN_BATCH = 100
_READY_WINDOW_SECONDS = 0.02
"""How long a "ready" callback waits for others to be handled with it."""
_PLACED_KEPT = 20_000
"""Orders placed by this worker kept for their callback (a few MB; older ones are read)."""


def order_state(order: Document) -> OrderState:
    """Where an order's attempts stand (its completion, once confirmed, is kept apart)."""
    return OrderState(order["state"])


class Gathering:
    """Work items that arrive within a short window, handled as batches of at most `limit` by
    `handle`; each caller waits for its batch. The batches of one window run side by side, and
    items arriving meanwhile open the next window: a burst of callbacks is never queued behind
    one batch after another (handled in turn, a burst of 1,000 outlasted the centre's 5 s
    timeout, its retries and our re-sent orders piled up, and the centre's client seized up).
    A batch that fails is handled again one item at a time, so one bad item fails only its
    own caller."""

    def __init__(
        self,
        handle: Callable[[Sequence[Document]], Awaitable[None]],
        *,
        window_seconds: float,
        limit: int = 64,
    ) -> None:
        self._handle = handle
        self._window = window_seconds
        self._limit = limit
        self._waiting: list[tuple[Document, asyncio.Future[None]]] = []
        self._flush: asyncio.Task[None] | None = None

    async def add(self, item: Document) -> None:
        """Hand the item over and wait until its batch is handled (its error, if it failed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flush is None:
            self._flush = asyncio.create_task(self._flush_soon())
        await asyncio.shield(done)

    def _take_waiting(self) -> list[tuple[Document, asyncio.Future[None]]]:
        taken, self._waiting, self._flush = self._waiting, [], None
        return taken

    async def _flush_soon(self) -> None:
        taken: list[tuple[Document, asyncio.Future[None]]] = []
        try:
            await asyncio.sleep(self._window)
            taken = self._take_waiting()
            await asyncio.gather(
                *(
                    self._run(taken[start : start + self._limit])
                    for start in range(0, len(taken), self._limit)
                )
            )
        finally:
            if self._flush is asyncio.current_task():
                taken = self._take_waiting()
            for _, done in taken:
                if not done.done():
                    done.set_exception(RuntimeError("stopped before the work was done"))

    async def _run(self, batch: list[tuple[Document, asyncio.Future[None]]]) -> None:
        try:
            await self._handle([item for item, _ in batch])
        except Exception:
            for item, done in batch:
                try:
                    await self._handle([item])
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
            return
        for _, done in batch:
            done.set_result(None)


class UnknownOrderError(LookupError):
    """A callback named an order this service never placed."""


class ProductionService:
    """Places, retries and completes production orders."""

    def __init__(
        self,
        store: IssuanceStore,
        publisher: EventPublisher,
        clock: Clock,
        centre: ProductionCentreClient,
        settings: IssuanceSettings,
        issue: IssueService,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._centre = centre
        self._settings = settings
        self._issue = issue
        self._placed: OrderedDict[str, Document] = OrderedDict()
        self._ready = Gathering(self._ready_together, window_seconds=_READY_WINDOW_SECONDS)

    async def open_order(self, record: Document, deadline: Document | None = None) -> None:
        """Create the order of an approved application (once) and send it.

        The worker whose insert creates the order sends its first attempt, with no lease: no
        one else can hold that attempt, since the order is written as already sent and waiting
        for the callback (so the timer and a redelivered event leave it alone until then). If
        the worker dies before the send, the timer sends it again after the callback timeout;
        nothing is lost. `application.in_production` is published before the send (the order
        is placed; the centre's refusals are retried until the card exists). The callback needs
        the order's decision and deadline: the stored order carries the deadline, and the
        decision is read from the decisions unless this worker placed the order (`stored`)."""
        order = self.new_order(record, deadline)
        placed = str(order["_id"])
        if await insert_once(self._store.orders, stored(order)):
            self._remember(order)
            await insert_once(self._store.order_schedule, schedule_entry(order))
            await self.publish_in_production(order)
            await self.send_first(order)
            return
        existing = await self._store.orders.find_one({"_id": placed})
        if existing is None:
            raise LookupError(f"production order {placed} vanished")
        if await self._completed(existing):
            return
        await self._store.insert_first(
            self._store.order_schedule,
            {"_id": placed, "next_attempt_at": existing["next_attempt_at"]},
        )
        await self.publish_in_production(existing)
        if (
            order_state(existing) is OrderState.PENDING
            and existing["next_attempt_at"] <= self._clock.now()
        ):
            await self._attempt(existing)

    def new_order(self, record: Document, deadline: Document | None) -> Document:
        """The order of an approved decision, written as sent and waiting for the callback."""
        now = self._clock.now()
        waiting_until = now + timedelta(seconds=self._settings.production_callback_timeout_seconds)
        return {
            "_id": order_id(str(record["_id"]), int(record["issue_count"])),
            "application_id": str(record["_id"]),
            "acceptance_point": record["acceptance_point"],
            "card_number": record["card_number"],
            "issue_count": int(record["issue_count"]),
            "state": OrderState.SENT.value,
            "attempts": 1,
            "next_attempt_at": waiting_until,
            "created_at": now,
            "decision": record,
            "deadline": deadline,
        }

    async def open_orders(
        self, approved: Sequence[tuple[Document, Document | None]]
    ) -> tuple[list[Document], list[tuple[Document, Document | None]]]:
        """`open_order` for a batch of (decision, deadline), up to the send: the orders with
        one insert, their schedule entries with one more. Returns the orders created now (the
        caller publishes `in_production_event` of each, then calls `send_first`) and the
        approvals whose order existed already (for `open_order`, which picks up from there)."""
        orders = [self.new_order(record, deadline) for record, deadline in approved]
        taken = await insert_new(self._store.orders, [stored(order) for order in orders])
        created = [order for order in orders if order["_id"] not in taken]
        for order in created:
            self._remember(order)
        await insert_new(self._store.order_schedule, [schedule_entry(order) for order in created])
        existing = [
            pair for pair, order in zip(approved, orders, strict=True) if order["_id"] in taken
        ]
        return created, existing

    async def send_first(self, order: Document) -> None:
        """The first attempt of an order this worker created (no lease: see `open_order`)."""
        error = await self._submit(order, 1)
        if error is not None:
            await self._failed(order, 1, error)

    def _remember(self, order: Document) -> None:
        """Keep a placed order for its callback: what "ready" reads of it (decision,
        deadline, application) never changes, so the callback needs no read of the store."""
        self._placed[str(order["_id"])] = order
        while len(self._placed) > _PLACED_KEPT:
            self._placed.popitem(last=False)

    async def _completed(self, order: Document) -> bool:
        """Whether the centre confirmed this order's card (its completion is recorded)."""
        return await self._store.completions.find_one({"_id": order["_id"]}) is not None

    async def retry_due(self) -> int:
        """Send every order whose next attempt is due; returns how many were tried."""
        now = self._clock.now()
        cursor = self._store.order_schedule.find({"next_attempt_at": {"$lte": now}}).limit(
            _SCAN_BATCH
        )
        due = [entry["_id"] async for entry in cursor]
        for placed in due:
            order = await self._store.orders.find_one({"_id": placed})
            if order is None:
                await self._store.order_schedule.delete_one({"_id": placed})
                continue
            if await self._completed(order):
                # The centre's "ready" was recorded but the worker may have died before the
                # card's events went out (the callback drops the schedule entry only after
                # them): finish the issue again, with the same event ids, then drop the entry.
                await self._issue.card_ready(order)
                await self._store.order_schedule.delete_one({"_id": placed})
                continue
            if order_state(order) is OrderState.SENT:
                log.warning("no callback in time, sending again", order_id=placed)
            await self._attempt(order)
        return len(due)

    async def _attempt(self, order: Document) -> None:
        """A retry (timer or redelivery): one lease per attempt, so two workers never send
        the same attempt."""
        attempt = int(order["attempts"]) + 1
        now = self._clock.now()
        lease_for = timedelta(seconds=self._settings.production_request_timeout_seconds * 3)
        if not await self._store.take_lease(f"{order['_id']}|{attempt}", now, now + lease_for):
            return
        error = await self._submit(order, attempt)
        if error is not None:
            await self._failed(order, attempt, error)
            return
        timeout = timedelta(seconds=self._settings.production_callback_timeout_seconds)
        sent_at = self._clock.now()
        await self._reschedule(
            str(order["_id"]),
            {
                "state": OrderState.SENT.value,
                "attempts": attempt,
                "last_attempt_at": sent_at,
                "next_attempt_at": sent_at + timeout,
            },
        )

    async def _submit(self, order: Document, attempt: int) -> str | None:
        """Send one attempt to the centre; the error when it refused or could not be reached."""
        error = await self._centre.submit(
            ProductionRequest(
                order_id=str(order["_id"]),
                attempt=attempt,
                card_number=str(order["card_number"]),
                issue_count=int(order["issue_count"]),
                callback_url=self._settings.callback_url,
            )
        )
        PRODUCTION_ATTEMPTS.labels("accepted" if error is None else "failed").inc()
        return error

    async def _failed(self, order: Document, attempt: int, error: str) -> None:
        """The attempt did not reach the centre: send it again after the backoff."""
        log.warning("production order failed", order_id=order["_id"], error=error)
        now = self._clock.now()
        await self._reschedule(
            str(order["_id"]),
            {
                "state": OrderState.PENDING.value,
                "attempts": attempt,
                "last_attempt_at": now,
                "next_attempt_at": now + self._backoff(attempt),
                "last_error": error,
            },
        )

    async def _reschedule(self, placed: str, fields: Document) -> None:
        """Record an attempt's outcome and when to look at the order again. If the centre
        confirmed the card meanwhile, its completion still says so and the timer drops the
        order when it comes round."""
        await self._store.orders.update_one({"_id": placed}, {"$set": fields})
        await self._store.order_schedule.update_one(
            {"_id": placed}, {"$set": {"next_attempt_at": fields["next_attempt_at"]}}
        )

    async def publish_in_production(self, order: Document) -> None:
        """`application.in_production`, once per order (a repeat has the same id)."""
        await self._publisher.publish(self.in_production_event(order))

    def in_production_event(self, order: Document) -> Event[Any]:
        """The order's `application.in_production` (its id derived from the order's)."""
        application_id = str(order["application_id"])
        return self._publisher.event(
            ApplicationInProduction(
                application_id=application_id,
                acceptance_point=str(order["acceptance_point"]),
                card_number=str(order["card_number"]),
                issue_count=int(order["issue_count"]),
                production_request_id=str(order["_id"]),
            ),
            event_id=derived_event_id(str(order["_id"]), "application.in_production"),
        )

    async def callback(self, order_ref: str, attempt: int, status: str, error: str | None) -> None:
        """The centre reports an attempt's outcome: the card is ready, or it must be redone.

        "Ready" records the order's completion (the first one fixes the ready day) and drops
        the order from the schedule; the order document itself is not written again. A
        "ready" for an order this worker placed uses the order as placed (what it reads of it
        never changes) instead of reading it, and "ready"s that arrive within a moment of each
        other are handled together (`_ready_together`); the callback is answered when its
        own order's work is done."""
        placed = self._placed.get(order_ref) if status == "ready" else None
        order = placed or await self._store.orders.find_one({"_id": order_ref})
        if order is None:
            raise UnknownOrderError(order_ref)
        if status == "ready":
            await self._ready.add(order)
            self._placed.pop(order_ref, None)
            return
        if (
            order_state(order) is OrderState.SENT
            and int(order["attempts"]) == attempt
            and not await self._completed(order)
        ):
            log.warning("production centre reports failure", order_id=order_ref, error=error)
            await self._reschedule(
                order_ref,
                {
                    "state": OrderState.PENDING.value,
                    "next_attempt_at": self._clock.now() + self._backoff(attempt),
                    "last_error": (error or "failed")[:500],
                },
            )

    async def _ready_together(self, orders: Sequence[Document]) -> None:
        """The card of each order is ready: issue them (see `IssueService.cards_ready`), then
        drop them from the schedule with one delete per batch token (`delete_together`)."""
        await self._issue.cards_ready(orders)
        await delete_together(
            self._store.order_schedule,
            [(token_of(order.get("deadline")), {"_id": order["_id"]}) for order in orders],
        )

    def _backoff(self, attempt: int) -> timedelta:
        return timedelta(
            seconds=retry_delay(
                attempt,
                self._settings.production_retry_base_seconds,
                self._settings.production_retry_max_seconds,
            )
        )


def stored(order: Document) -> Document:
    """What the store keeps of a new order: all but its decision, which is stored already under
    its application id (`issuances`, a 3 KB document that the order doubled). The worker that
    placed the order keeps it whole in memory for the callback; any other reader of the order
    reads the decision (`IssueService.cards_ready`)."""
    return {key: value for key, value in order.items() if key != "decision"}


def schedule_entry(order: Document) -> Document:
    """An order's entry in the schedule, tagged with its deadline's batch token (so the orders
    of one batch of acceptances leave the schedule with one delete)."""
    return {
        "_id": order["_id"],
        "next_attempt_at": order["next_attempt_at"],
        **batch_tag(token_of(order.get("deadline"))),
    }
