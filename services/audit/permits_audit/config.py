"""Settings of the audit service (`PERMITS_*` environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from permits_common.settings import CommonSettings

MINIMUM_RETENTION_DAYS = 180
"""网络安全法: network logs are kept for no less than six months."""


class AuditSettings(CommonSettings):
    """Where the trail lives, how long it is kept and how often it is checked."""

    audit_port: int = 8005
    audit_group: str = Field("permits-audit", description="Consumer group of the trail writer")
    audit_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a chain with no entries yet starts reading: production keeps "
        "`earliest` (every entry on the topic); a benchmark on a shared broker uses `latest`",
    )
    mongo_database: str = "permits_audit"
    audit_retention_days: int = Field(
        default=365,
        ge=MINIMUM_RETENTION_DAYS,
        description="Entries older than this are removed; the law requires at least 180 days",
    )
    audit_check_seconds: float = Field(
        default=600.0, gt=0, description="How often the whole chain is checked (metric, alert)"
    )
    audit_prune_seconds: float = Field(
        default=3600.0, gt=0, description="How often entries past retention are removed"
    )
