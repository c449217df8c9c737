"""Settings of the rights service (`PERMITS_*` environment variables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from permits_common.domain.agencies import Agency
from permits_common.settings import CommonSettings


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """An agency's registered endpoint and the secret its signatures are made with."""

    agency: Agency
    url: str
    secret: str


class RightsSettings(CommonSettings):
    """Everything configurable; webhook URLs and secrets are per agency,
    e.g. `PERMITS_WEBHOOK_HOTEL_URL` and `PERMITS_WEBHOOK_HOTEL_SECRET`."""

    rights_group: str = Field("permits-rights", description="Faust app id / consumer group")
    rights_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a new consumer group starts reading the card topic. Production "
        "keeps `earliest` (the register is every card ever issued); a benchmark on a shared "
        "broker uses `latest`, so another run's cards (same numbers, other databases) are not "
        "taken for this run's",
    )
    rights_port: int = 8003
    mongo_database: str = "permits_rights"
    verify_rate_per_second: float = 500.0
    verify_burst: float = 1000.0
    audit_in_flight: int = Field(
        2,
        ge=1,
        le=8,
        description="Batches of audit entries in flight at once (each answer waits for its "
        "entry's batch); each beyond the first is a producer connection of its own",
    )
    webhook_max_attempts: int = Field(8, ge=1)
    webhook_backoff_seconds: float = 0.5
    webhook_backoff_max_seconds: float = 60.0
    webhook_timeout_seconds: float = 5.0
    webhook_concurrency: int = Field(8, ge=1)

    webhook_hotel_url: str | None = None
    webhook_hotel_secret: SecretStr | None = None
    webhook_transport_url: str | None = None
    webhook_transport_secret: SecretStr | None = None
    webhook_finance_url: str | None = None
    webhook_finance_secret: SecretStr | None = None
    webhook_housing_fund_url: str | None = None
    webhook_housing_fund_secret: SecretStr | None = None
    webhook_hr_social_url: str | None = None
    webhook_hr_social_secret: SecretStr | None = None
    webhook_education_url: str | None = None
    webhook_education_secret: SecretStr | None = None
    webhook_health_url: str | None = None
    webhook_health_secret: SecretStr | None = None
    webhook_culture_sport_url: str | None = None
    webhook_culture_sport_secret: SecretStr | None = None
    webhook_legal_aid_url: str | None = None
    webhook_legal_aid_secret: SecretStr | None = None
    webhook_civil_affairs_url: str | None = None
    webhook_civil_affairs_secret: SecretStr | None = None
    webhook_vehicle_url: str | None = None
    webhook_vehicle_secret: SecretStr | None = None
    webhook_hmt_office_url: str | None = None
    webhook_hmt_office_secret: SecretStr | None = None

    @property
    def register_topic(self) -> str:
        """The compacted changelog the in-memory register is rebuilt from (one per group, like
        a Faust table changelog, so isolated test workers never share state)."""
        return f"{self.rights_group}-register-changelog"

    def webhook_targets(self) -> dict[Agency, WebhookTarget]:
        """The agencies that registered an endpoint (URL and secret both set)."""
        targets: dict[Agency, WebhookTarget] = {}
        for agency in Agency:
            url = getattr(self, f"webhook_{agency.value}_url")
            secret: SecretStr | None = getattr(self, f"webhook_{agency.value}_secret")
            if url and secret is not None:
                targets[agency] = WebhookTarget(agency, url, secret.get_secret_value())
        return targets

    @model_validator(mode="after")
    def _webhooks_complete_and_https_in_production(self) -> RightsSettings:
        for agency in Agency:
            url = getattr(self, f"webhook_{agency.value}_url")
            secret = getattr(self, f"webhook_{agency.value}_secret")
            if bool(url) != (secret is not None):
                raise ValueError(
                    f"PERMITS_WEBHOOK_{agency.value.upper()}_URL and _SECRET must be set together"
                )
            if url and self.env == "production" and not url.startswith("https://"):
                raise ValueError(f"the {agency.value} webhook must use HTTPS in production")
        return self
