"""Production mode: no development tokens, no dev clock."""

from __future__ import annotations

import httpx
import pytest

from permits_common.settings import DevelopmentSecretsInProductionError
from permits_intake.config import IntakeSettings
from permits_intake.main import build_app


def test_production_refuses_development_tokens() -> None:
    with pytest.raises(DevelopmentSecretsInProductionError):
        IntakeSettings(env="production")


def test_defaults() -> None:
    settings = IntakeSettings()
    assert settings.intake_port == 8001
    assert settings.mongo_database == "permits_intake"
    assert settings.dev_endpoints_enabled


async def test_no_dev_clock_in_production() -> None:
    settings = IntakeSettings(env="production", tokens={"prod-ops-secret": "ops"})
    app = build_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        response = await client.put(
            "/api/v1/dev/clock",
            json={"offset_days": 3},
            headers={"Authorization": "Bearer prod-ops-secret"},
        )
        assert response.status_code == 404
        spec = (await client.get("/openapi.json")).json()
        assert "/api/v1/dev/clock" not in spec["paths"]
    await app.state.runtime.client.close()
