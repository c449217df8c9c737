"""Intake settings: the shared `PERMITS_*` settings plus the intake's own port, store and group."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from permits_common.events import topics
from permits_common.settings import CommonSettings


class IntakeSettings(CommonSettings):
    """Read from the environment, e.g. `PERMITS_INTAKE_PORT=8001`."""

    intake_port: int = Field(default=8001, ge=0, le=65535)
    mongo_database: str = "permits_intake"
    intake_group: str = Field(
        default="permits-intake",
        description="Kafka consumer group of the status views; unique per test run",
    )
    intake_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a new status-view consumer group starts; a benchmark on a shared "
        "broker uses `latest`, so it does not replay other runs' events",
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Safety-net sweep for leftovers (it reads the whole collection); new "
        "entries are published as soon as they are signalled",
    )
    deadletter_topic: str = Field(
        default=topics.DEADLETTER,
        description="The dead-letter topic `GET /api/v1/dead-letters` summarises for operators "
        "(tests read one of their own)",
    )
    kafka_check_cache_seconds: float = Field(default=1.0, ge=0)

    @property
    def dev_endpoints_enabled(self) -> bool:
        """The dev clock exists only outside production."""
        return self.env != "production"
