"""The audit service as a real process on the shared broker and store, with a topic, database
and consumer group of its own, and an in-test producer that publishes like the services do."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from permits_common.audit import AuditTrail
from permits_common.events.topics import TopicSpec
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.mongo import Document, mongo_client
from permits_common.settings import CommonSettings

OPS = {"Authorization": "Bearer dev-ops"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AuditService:
    """One `python -m permits_audit` process and what it was configured with."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    settings: CommonSettings = field(default_factory=CommonSettings)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> str:
        return self.env["PERMITS_MONGO_DATABASE"]

    @property
    def infrastructure(self) -> dict[str, str]:
        """The broker and store this test session uses, for the processes a test starts."""
        return {key: self.env[key] for key in ("PERMITS_KAFKA_BOOTSTRAP", "PERMITS_MONGO_URL")}

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "permits_audit"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
            start_new_session=True,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert self.process.poll() is None, f"audit exited; see {self.log_path}"
                await asyncio.sleep(0.1)
        raise AssertionError("audit service not ready")

    def kill(self) -> None:
        """kill -9 of this test's own audit process (nothing shared)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        for _ in range(100):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        else:
            self.process.kill()
        self.process = None

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(self.url + path, params=params, headers=OPS)
        response.raise_for_status()
        return response.json()

    async def entries(self) -> list[Document]:
        client = mongo_client(self.settings)
        try:
            return [doc async for doc in client[self.database]["entries"].find({})]
        finally:
            await client.close()

    async def wait_for_entries(self, count: int, timeout: float = 60.0) -> list[Document]:
        docs: list[Document] = []
        for _ in range(int(timeout * 5)):
            docs = await self.entries()
            if len(docs) >= count:
                return docs
            await asyncio.sleep(0.2)
        raise AssertionError(f"{len(docs)} of {count} audit entries stored")


def service_env(
    unique: str, tmp_path: Path, infrastructure: dict[str, str]
) -> tuple[dict[str, str], int, Path]:
    port = free_port()
    env = {
        **os.environ,
        **infrastructure,
        "PERMITS_AUDIT_TOPIC": f"permits.audit.test-{unique}",
        "PERMITS_AUDIT_GROUP": f"permits-audit-{unique}",
        "PERMITS_MONGO_DATABASE": f"audit_{unique}",
        "PERMITS_AUDIT_PORT": str(port),
        "PERMITS_AUDIT_CHECK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return env, port, tmp_path / "audit.log"


@pytest_asyncio.fixture
async def audit_service(
    infrastructure: dict[str, str], unique: str, tmp_path: Path
) -> AsyncIterator[AuditService]:
    env, port, log_path = service_env(unique, tmp_path, infrastructure)
    settings = CommonSettings(
        audit_topic=env["PERMITS_AUDIT_TOPIC"],
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        mongo_url=infrastructure["PERMITS_MONGO_URL"],
    )
    await ensure_topics(settings, [TopicSpec(settings.audit_topic, "subject", "test", 4)])
    service = AuditService(env, port, log_path, settings=settings)
    await service.start()
    yield service
    await service.stop()
    client = mongo_client(settings)
    await client.drop_database(service.database)
    await client.close()


@pytest_asyncio.fixture
async def trail(audit_service: AuditService) -> AsyncIterator[AuditTrail]:
    publisher = EventPublisher(audit_service.settings, "/permits/test")
    await publisher.start()
    audit = AuditTrail(
        publisher, service="test", topic=audit_service.settings.audit_topic, timeout_seconds=5
    )
    audit.start()
    yield audit
    await audit.stop()
    await publisher.stop()
