"""Production refuses the development callback secret; tests isolate workers by settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from permits_common.settings import DevelopmentSecretsInProductionError
from permits_issuance.config import IssuanceSettings


def test_production_refuses_the_development_callback_secret() -> None:
    with pytest.raises(DevelopmentSecretsInProductionError, match="PRODUCTION_CALLBACK_SECRET"):
        IssuanceSettings(env="production", tokens={"s3cret": "ops"})
    settings = IssuanceSettings(
        env="production",
        tokens={"s3cret": "ops"},
        production_callback_secret=SecretStr("a-real-secret"),
    )
    assert not settings.dev_endpoints_enabled


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PERMITS_ISSUANCE_GROUP",
        "PERMITS_ISSUANCE_PORT",
        "PERMITS_ISSUANCE_PUBLIC_URL",
        "PERMITS_AT_RISK_WORKING_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = IssuanceSettings()
    assert settings.issuance_group == "permits-issuance"
    assert settings.issuance_port == 8002
    assert settings.callback_url == "http://127.0.0.1:8002/api/v1/production/callbacks"
    assert settings.at_risk_working_days == 5
