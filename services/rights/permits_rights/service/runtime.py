"""The running service's parts, wired once and shared by the agent, the tasks and the API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from permits_common.audit import AuditTrail
from permits_common.clock import Clock
from permits_common.domain.agencies import Agency
from permits_common.events.envelope import derived_event_id
from permits_common.heap import settle_heap
from permits_common.kafka import EventPublisher, kafka_reachable
from permits_common.mongo import ProcessedEvents, mongo_client, ping
from permits_common.streams import retry_forever
from permits_rights.adapters.policy_file import load_policies
from permits_rights.adapters.register_changelog import RegisterRecords, RegisterReplica
from permits_rights.adapters.store import DeliveryLog, create_indexes
from permits_rights.adapters.webhook_client import WebhookClient
from permits_rights.config import RightsSettings
from permits_rights.domain.register import RegisterIndex
from permits_rights.service.holder_updates import RECORD_BATCH_BYTES, SOURCE, HolderUpdates
from permits_rights.service.metrics import REGISTER_CARDS
from permits_rights.service.verification import Verifier
from permits_rights.service.webhooks import WebhookDispatcher


class Runtime:
    """Owns connections and background tasks; `started` is set once everything is up."""

    def __init__(self, settings: RightsSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.policies = load_policies()
        self.webhook_targets = {
            agency: target
            for agency, target in settings.webhook_targets().items()
            if self.policies[agency].feed
        }
        self.mongo = mongo_client(settings)
        self.database = self.mongo[settings.mongo_database]
        self.deliveries = DeliveryLog(self.database)
        self.processed = ProcessedEvents(self.database, settings.rights_group)
        self.publisher = EventPublisher(settings, SOURCE, max_batch_bytes=RECORD_BATCH_BYTES)
        self.audit_publishers = [
            EventPublisher(settings, SOURCE) for _ in range(settings.audit_in_flight - 1)
        ]
        self.audit = AuditTrail(
            self.publisher,
            service="rights",
            topic=settings.audit_topic,
            timeout_seconds=settings.audit_publish_timeout_seconds,
            extra_publishers=self.audit_publishers,
        )
        self.index = RegisterIndex()
        self.records = RegisterRecords(self.index)
        REGISTER_CARDS.set_function(lambda: len(self.index))
        self.replica = RegisterReplica(settings, settings.register_topic, self.records)
        self.verifier = Verifier(
            self.index, self.clock, settings.verify_rate_per_second, settings.verify_burst
        )
        self.webhook_client = WebhookClient(
            settings.webhook_timeout_seconds, settings.webhook_concurrency
        )
        self.dispatcher = WebhookDispatcher(
            targets=self.webhook_targets,
            deliveries=self.deliveries,
            client=self.webhook_client,
            publisher=self.publisher,
            consumer_name=settings.rights_group,
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            concurrency=settings.webhook_concurrency,
            audit=self.audit,
        )
        self.updates = HolderUpdates(
            deliveries=self.deliveries,
            publisher=self.publisher,
            policies=self.policies,
            webhook_agencies=frozenset(self.webhook_targets),
            records=self.records,
            register_topic=settings.register_topic,
            wake_webhooks=self.dispatcher.wake,
            audit_topic=settings.audit_topic,
        )
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False

    @staticmethod
    def feed_event_id(card_number: str, issue_count: int, status: str, agency: Agency) -> str:
        """The id every feed event of this fact carries (topic and webhook alike)."""
        return derived_event_id(card_number, issue_count, status, agency.value)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a background task owned by the runtime (cancelled on stop)."""
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    def on_task_exit(self, name: str, callback: Callable[[], None]) -> None:
        """Call `callback` if the named task ends while the runtime is not stopping."""

        def done(_task: asyncio.Task[Any]) -> None:
            if not self._stopping:
                callback()

        for task in self._tasks:
            if task.get_name() == name:
                task.add_done_callback(done)

    async def start(self) -> None:
        """Indexes, producer, webhooks; then the register replay, which the cards agent waits
        for (`started`): it decides on the replayed register (topics exist already: see
        main.create_topics)."""
        await retry_forever(lambda: create_indexes(self.database))
        await self.start_publishing()
        self.spawn(self.replica.run(), "register-replica")
        self.spawn(self.dispatcher.run(), "webhooks")
        await self.replica.ready.wait()
        settle_heap()
        self.started.set()

    async def stop(self) -> None:
        """Let the webhook round under way record its outcomes (within half the shutdown
        grace), cancel the other background work and close connections."""
        self._stopping = True
        self.replica.stop()
        self.dispatcher.stop()
        delivering = [task for task in self._tasks if task.get_name() == "webhooks"]
        if delivering:
            bound = min(
                self.settings.webhook_timeout_seconds + 1, self.settings.shutdown_grace_seconds / 2
            )
            await asyncio.wait(delivering, timeout=bound)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.stop_publishing()
        await self.webhook_client.close()
        await self.mongo.close()

    async def start_publishing(self) -> None:
        """The producer, the audit trail's own connections and its flusher."""
        await retry_forever(self.publisher.start)
        for publisher in self.audit_publishers:
            await retry_forever(publisher.start)
        self.audit.start()

    async def stop_publishing(self) -> None:
        """Publish the audit entries still buffered, then close the connections."""
        await self.audit.stop()
        for publisher in self.audit_publishers:
            await publisher.stop()
        await self.publisher.stop()

    async def kafka_ready(self) -> bool:
        """Readiness: the broker answers."""
        return await kafka_reachable(self.settings)

    async def store_ready(self) -> bool:
        """Readiness: the store answers."""
        return await ping(self.database)

    async def register_ready(self) -> bool:
        """Readiness: the in-memory register has replayed its changelog."""
        return self.replica.ready.is_set()
