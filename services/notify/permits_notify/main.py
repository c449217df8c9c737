"""Wires the notify worker: store, channels, templates, publisher, Faust app and HTTP app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import faust

from permits_common.clock import Clock
from permits_common.heap import settle_heap
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.logs import configure_logging, get_logger
from permits_common.mongo import ProcessedEvents, mongo_client
from permits_common.streams import BoundedWorker, retry_forever
from permits_common.web.app import new_event_loop
from permits_notify.adapters.channels import SmsGatewaySender, SmtpSender
from permits_notify.adapters.store import NotifyStore
from permits_notify.adapters.templates import TemplateRenderer
from permits_notify.config import NotifySettings
from permits_notify.domain.scheduling import QuietHours, RateLimit, RetryPolicy
from permits_notify.entrypoints.agents import build_faust_app
from permits_notify.entrypoints.http import create_http_app
from permits_notify.service.notifier import DeliveryPolicy, NotificationService

log = get_logger("notify.main")


def delivery_policy(settings: NotifySettings) -> DeliveryPolicy:
    """Quiet hours, rate limit and retries as configured."""
    return DeliveryPolicy(
        quiet_hours=QuietHours(start=settings.quiet_hours_start, end=settings.quiet_hours_end),
        rate_limit=RateLimit(limit=settings.sms_per_recipient_per_hour),
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base=timedelta(seconds=settings.retry_base_seconds),
        ),
        lease=timedelta(seconds=settings.send_lease_seconds),
        batch=settings.dispatch_batch,
    )


@dataclass
class Runtime:
    """Everything the worker holds open, started before Faust and closed when it stops."""

    settings: NotifySettings
    publisher: EventPublisher
    store: NotifyStore
    sms: SmsGatewaySender
    service: NotificationService
    processed: ProcessedEvents

    async def start(self) -> None:
        """Topics, indexes and the producer; waits for the broker and the store."""
        await retry_forever(lambda: ensure_topics(self.settings))
        await retry_forever(self.store.ensure_indexes)
        await retry_forever(self.publisher.start)

    async def stop(self) -> None:
        """Flush the producer and close the gateway client."""
        await self.publisher.stop()
        await self.sms.close()


def build_runtime(settings: NotifySettings) -> Runtime:
    """Construct (not yet connect) the worker's parts."""
    database = mongo_client(settings)[settings.mongo_database]
    store = NotifyStore(database)
    publisher = EventPublisher(settings, "notify")
    sms = SmsGatewaySender(settings)
    service = NotificationService(
        store=store,
        renderer=TemplateRenderer(),
        senders={"sms": sms, "email": SmtpSender(settings)},
        publisher=publisher,
        clock=Clock(),
        policy=delivery_policy(settings),
    )
    processed = ProcessedEvents(database, settings.notify_group)
    return Runtime(settings, publisher, store, sms, service, processed)


def build_worker(settings: NotifySettings, loop: asyncio.AbstractEventLoop) -> faust.Worker:
    """A Faust worker with the HTTP app inside; its resources are started on `loop` first."""
    runtime = build_runtime(settings)
    loop.run_until_complete(runtime.start())
    http_app = create_http_app(settings, runtime.store, runtime.service)
    app = build_faust_app(
        settings,
        service=runtime.service,
        publisher=runtime.publisher,
        processed=runtime.processed,
        http_app=http_app,
        on_shutdown=runtime.stop,
    )
    return BoundedWorker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        redirect_stdouts=False,
        grace_seconds=settings.shutdown_grace_seconds,
    )


def main() -> None:
    """`python -m permits_notify`: run the worker until SIGINT/SIGTERM."""
    settings = NotifySettings()
    configure_logging(settings.log_level, settings.json_logs)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    worker = build_worker(settings, loop)
    log.info("notify starting", group=settings.notify_group, port=settings.notify_port)
    settle_heap()
    worker.execute_from_commandline()
