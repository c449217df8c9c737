"""Settings: channel secrets from the environment, development secrets refused in production."""

from __future__ import annotations

import pytest

from permits_common.settings import DevelopmentSecretsInProductionError
from permits_notify.config import NotifySettings


def test_defaults_point_at_the_local_simulators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERMITS_SMS_URL", raising=False)
    settings = NotifySettings()
    assert settings.smtp_port == 8025
    assert settings.sms_url.startswith("http://127.0.0.1:8011/")
    assert settings.notify_group == "permits-notify"
    assert settings.notify_port == 8004


def test_production_refuses_the_development_sms_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERMITS_ENV", "production")
    monkeypatch.setenv("PERMITS_TOKENS", '{"k3y-8f2a": "ops"}')
    monkeypatch.delenv("PERMITS_SMS_API_KEY", raising=False)
    with pytest.raises(DevelopmentSecretsInProductionError, match="SMS_API_KEY"):
        NotifySettings()
    monkeypatch.setenv("PERMITS_SMS_API_KEY", "b7c1e9d2-real")
    monkeypatch.setenv("PERMITS_SMTP_PASSWORD", "dev-mail")
    with pytest.raises(DevelopmentSecretsInProductionError, match="SMTP_PASSWORD"):
        NotifySettings()
    monkeypatch.setenv("PERMITS_SMTP_PASSWORD", "s3cret-relay")
    assert NotifySettings().sms_api_key.get_secret_value() == "b7c1e9d2-real"


def test_group_and_quiet_hours_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERMITS_NOTIFY_GROUP", "permits-notify-blue")
    monkeypatch.setenv("PERMITS_QUIET_HOURS_START", "21:30")
    settings = NotifySettings()
    assert settings.notify_group == "permits-notify-blue"
    assert settings.quiet_hours_start.hour == 21
