"""Settings of the notify service, from `PERMITS_*` environment variables."""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from permits_common.settings import CommonSettings


class NotifySettings(CommonSettings):
    """Channels, consumer group, quiet hours and limits; secrets default to refusable dev values."""

    model_config = SettingsConfigDict(env_prefix="PERMITS_", extra="ignore")

    notify_group: str = "permits-notify"
    notify_offset_reset: Literal["earliest", "latest"] = "earliest"
    mongo_database: str = "permits_notify"
    notify_port: int = 8004

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "residence-permits@jinan.example"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    sms_url: str = "http://127.0.0.1:8011/api/v1/messages"
    sms_api_key: SecretStr = SecretStr("dev-sms-key")
    sms_timeout_seconds: float = 10.0

    quiet_hours_start: time = time(22, 0)
    quiet_hours_end: time = time(8, 0)
    sms_per_recipient_per_hour: int = 5
    retry_max_attempts: int = 5
    retry_base_seconds: float = 2.0
    dispatch_interval_seconds: float = 1.0
    dispatch_batch: int = 200
    send_lease_seconds: float = 60.0
