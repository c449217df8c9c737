"""A real notify worker (`python -m permits_notify` as a subprocess) with real channels.

The SMTP sink and the SMS gateway simulator run in the test's event loop on ephemeral ports;
the worker talks to the real local Kafka and store, in its own database and consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from notify_samples import accepted

from permits_common.events.models import EventData
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.settings import CommonSettings
from permits_notify.simulators.sms_gateway import GatewayState, create_sms_gateway_app
from permits_notify.simulators.smtp_sink import RunningSmtpSink, start_smtp_sink

T = TypeVar("T")
OPS = {"Authorization": "Bearer dev-ops"}
SMS_KEY = "dev-sms-test-key"


def free_port() -> int:
    """An ephemeral port for the worker's HTTP app (the worker binds it itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_phone() -> str:
    """A Hong Kong mobile number no other test uses."""
    return "+8529" + str(uuid.uuid4().int)[:7]


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, within: float = 20.0, every: float = 0.2
) -> T:
    """Poll an async probe until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def wait_until(check: Callable[[], T], *, within: float = 20.0) -> T:
    """Poll a plain check (e.g. what a simulator received) until it is truthy."""

    async def probe() -> T:
        return check()

    return await wait_for(probe, within=within)


@dataclass
class NotifyHarness:
    """Everything a test needs to drive the worker and read what the applicant received."""

    base_url: str
    database: str
    group: str
    infrastructure: dict[str, str]
    publisher: EventPublisher
    smtp: RunningSmtpSink
    gateway: GatewayState
    http: httpx.AsyncClient

    async def publish(self, data: EventData, *, event_id: str | None = None) -> str:
        """Publish one event as its producer would; returns the event id."""
        event = self.publisher.event(data, event_id=event_id or str(uuid.uuid4()))
        await self.publisher.publish(event)
        return event.id

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """SMS the gateway accepted for one number."""
        return [m for m in self.gateway.messages if m["to"] == phone]

    def mail_to(self, address: str) -> list[dict[str, Any]]:
        """Emails the SMTP sink received for one address."""
        return self.smtp.sink.find(address)

    async def log(self, application_id: str) -> list[dict[str, Any]]:
        """The delivery log as ops see it."""
        response = await self.http.get(
            "/api/v1/notifications", params={"application_id": application_id}, headers=OPS
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def serve_in_loop(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve an ASGI app in the test's event loop on a free port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, int(port)


@contextlib.asynccontextmanager
async def running_notify(infrastructure: dict[str, str], log_dir: Path) -> Any:
    """Start the channels and the worker; wait until it consumes; stop everything after."""
    tag = uuid.uuid4().hex[:10]
    smtp = await start_smtp_sink("127.0.0.1", 0)
    gateway_app = create_sms_gateway_app(SMS_KEY)
    sms_server, sms_task, sms_port = await serve_in_loop(gateway_app)
    http_port = free_port()
    database = f"permits_test_{tag}"
    group = f"permits-notify-test-{tag}"
    env = {
        **os.environ,
        **infrastructure,
        "PERMITS_ENV": "test",
        "PERMITS_NOTIFY_GROUP": group,
        "PERMITS_NOTIFY_OFFSET_RESET": "latest",
        "PERMITS_MONGO_DATABASE": database,
        "PERMITS_NOTIFY_PORT": str(http_port),
        "PERMITS_SMTP_HOST": "127.0.0.1",
        "PERMITS_SMTP_PORT": str(smtp.port),
        "PERMITS_SMS_URL": f"http://127.0.0.1:{sms_port}/api/v1/messages",
        "PERMITS_SMS_API_KEY": SMS_KEY,
        "PERMITS_QUIET_HOURS_START": "00:00",
        "PERMITS_QUIET_HOURS_END": "00:00",
        "PERMITS_RETRY_BASE_SECONDS": "0.2",
        "PERMITS_RETRY_MAX_ATTEMPTS": "4",
        "PERMITS_DISPATCH_INTERVAL_SECONDS": "0.5",
        "PERMITS_LOG_LEVEL": "WARNING",
    }
    log_path = log_dir / f"notify-{tag}.log"
    settings = CommonSettings(kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"])
    await ensure_topics(settings)
    publisher = EventPublisher(settings, "notify-tests")
    await publisher.start()
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "permits_notify", env=env, stdout=log_file, stderr=log_file
        )
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10)
        harness = NotifyHarness(
            base_url=f"http://127.0.0.1:{http_port}",
            database=database,
            group=group,
            infrastructure=infrastructure,
            publisher=publisher,
            smtp=smtp,
            gateway=gateway_app.state.gateway,
            http=http,
        )
        try:
            await _wait_until_consuming(harness, process, log_path)
            yield harness
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
            await http.aclose()
            await publisher.stop()
            sms_server.should_exit = True
            await sms_task
            await smtp.close()


async def _wait_until_consuming(
    harness: NotifyHarness, process: asyncio.subprocess.Process, log_path: Path
) -> None:
    """The worker starts at the end of the topics: publish probes until one is handled."""
    deadline = time.monotonic() + 90
    while True:
        if process.returncode is not None or time.monotonic() > deadline:
            output = await asyncio.to_thread(log_path.read_text, errors="replace")
            raise RuntimeError(f"notify did not start consuming:\n{output[-3000:]}")
        probe = f"PROBE-{uuid.uuid4().hex[:10]}"
        with contextlib.suppress(httpx.HTTPError):
            await harness.publish(accepted(probe, phone=None, email=f"{probe}@example.com"))
            for _ in range(10):
                await asyncio.sleep(0.3)
                if await harness.log(probe):
                    return
