"""Issuance settings: the shared `PERMITS_*` settings plus this service's own knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from permits_common.settings import CommonSettings


class IssuanceSettings(CommonSettings):
    """Read from the environment, e.g. `PERMITS_ISSUANCE_PORT=8002`."""

    issuance_port: int = Field(default=8002, ge=0, le=65535)
    issuance_group: str = Field(
        default="permits-issuance",
        description="Faust app id and Kafka consumer group; unique per isolated test worker",
    )
    issuance_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a new consumer group starts reading; tests on a shared broker use "
        "`latest` so an isolated worker does not act on other tests' applications",
    )
    issuance_only_application_prefix: str = Field(
        default="",
        max_length=64,
        description="Act only on applications whose id starts with this (empty: all). An "
        "isolated test worker on a shared broker sets it so it never decides, numbers or "
        "publishes for other tests' applications",
    )
    mongo_database: str = "permits_issuance"
    issuance_public_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Base URL the production centre calls back",
    )
    production_centre_url: str = "http://127.0.0.1:8010"
    production_callback_secret: SecretStr = Field(
        default=SecretStr("dev-production-callback-secret"),
        description="Shared HMAC secret for orders to and callbacks from the production centre",
    )
    production_callback_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="An order the centre has not called back within this time is sent again",
    )
    production_retry_base_seconds: float = Field(default=2.0, gt=0)
    production_retry_max_seconds: float = Field(default=300.0, gt=0)
    production_request_timeout_seconds: float = Field(default=5.0, gt=0)
    at_risk_working_days: int = Field(
        default=5, ge=0, le=19, description="Warn when this many working days or fewer are left"
    )
    deadline_scan_seconds: float = Field(
        default=60.0, gt=0, description="How often the deadline timer looks for due warnings"
    )
    production_scan_seconds: float = Field(
        default=1.0, gt=0, description="How often due production retries are looked for"
    )
    expiry_scan_seconds: float = Field(
        default=3600.0, gt=0, description="How often cards past valid_until are expired"
    )

    @property
    def dev_endpoints_enabled(self) -> bool:
        """The dev clock exists only outside production."""
        return self.env != "production"

    @property
    def callback_url(self) -> str:
        """Where the production centre reports a finished or failed order."""
        return f"{self.issuance_public_url.rstrip('/')}/api/v1/production/callbacks"
