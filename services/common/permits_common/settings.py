"""Settings every service shares, read from `PERMITS_*` environment variables.

Secrets come only from the environment. The development tokens are documented defaults for the
local stack; with `PERMITS_ENV=production` a service refuses to start while any is configured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from permits_common.domain.agencies import Agency
from permits_common.events import topics

DEV_TOKEN_PREFIX = "dev-"  # noqa: S105 - a prefix to refuse, not a secret


def development_tokens() -> dict[str, str]:
    """The documented tokens of the local stack: token → role."""
    tokens = {"dev-clerk": "clerk", "dev-ops": "ops"}
    tokens.update({f"dev-agency-{agency.value}": f"agency:{agency.value}" for agency in Agency})
    return tokens


class DevelopmentSecretsInProductionError(RuntimeError):
    """Raised at start-up so a production process never runs with public development secrets."""


class CommonSettings(BaseSettings):
    """Addresses, credentials and tokens; each service extends this with its own fields."""

    model_config = SettingsConfigDict(env_prefix="PERMITS_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ca_file: str | None = None
    kafka_manage_topics: bool = Field(
        default=True,
        description="Create missing catalog topics at start-up; off where topics are declared "
        "by the platform (Strimzi KafkaTopic) and ACLs forbid creating them",
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        description="Replication factor of topics the services create (Faust tables' changelogs)",
    )
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_tls: bool = False
    mongo_ca_file: str | None = None
    mongo_timeout_ms: int = 2000
    mongo_max_pool_size: int = Field(
        default=24,
        ge=1,
        description="Connections per process; FerretDB's SQLite backend stalls when one database "
        "gets more concurrent operations than its pool of 100 can serve",
    )
    log_level: str = "INFO"
    log_json: bool | None = None
    tokens: dict[str, str] = Field(
        default_factory=development_tokens,
        description='JSON object token → role, e.g. {"s3cret": "clerk:LIXIA"}',
    )
    host: str = "127.0.0.1"
    shutdown_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description="After SIGTERM, exit within this many seconds even if Kafka or the store "
        "do not answer (Kubernetes sends SIGKILL after its own 30 s grace period)",
    )
    cards_topic: str = Field(
        default=topics.CARDS,
        description="The card topic the rights service reads and the import of earlier cards "
        "writes (a benchmark on a shared broker uses a topic of its own)",
    )
    audit_topic: str = Field(
        default=topics.AUDIT,
        description="Where audit entries are published (tests use a topic of their own)",
    )
    audit_publish_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long an answer waits for its audit entry to reach Kafka before it "
        "fails closed with 503",
    )

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> CommonSettings:
        if self.env == "production":
            weak = [token for token in self.tokens if token.startswith(DEV_TOKEN_PREFIX)]
            if weak:
                raise DevelopmentSecretsInProductionError(
                    f"PERMITS_ENV=production with {len(weak)} development token(s) configured; "
                    "set PERMITS_TOKENS to production tokens"
                )
            for name, value in self._secrets().items():
                if value is not None and value.startswith(DEV_TOKEN_PREFIX):
                    raise DevelopmentSecretsInProductionError(
                        f"PERMITS_{name.upper()} holds a development secret in production"
                    )
        return self

    @model_validator(mode="after")
    def _refuse_a_topic_namespace_in_production(self) -> CommonSettings:
        if self.env == "production" and topics.NAMESPACE:
            raise ValueError(
                "PERMITS_TOPIC_NAMESPACE is for test systems sharing a broker; production uses "
                "the contract's topic names (unset it)"
            )
        return self

    def _secrets(self) -> dict[str, str | None]:
        """Every secret field, by name, for the production check (extended by services)."""
        found: dict[str, str | None] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found[name] = value.get_secret_value()
        return found

    @property
    def json_logs(self) -> bool:
        """JSON logs in production unless told otherwise; readable console logs locally."""
        return self.log_json if self.log_json is not None else self.env == "production"
