"""The local store's opt-in profiling settings: extra PostgreSQL settings and FerretDB's Go
profiles, both off unless asked for, the profiles never on an address other machines reach."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


def test_postgres_settings_are_added_only_when_asked_for(
    infra_tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(infra_tool.POSTGRES_SETTINGS_ENV, raising=False)
    assert infra_tool._postgres_extra_settings() == {}
    monkeypatch.setenv(
        infra_tool.POSTGRES_SETTINGS_ENV,
        "shared_preload_libraries=pg_stat_statements  pg_stat_statements.track=all",
    )
    assert infra_tool._postgres_extra_settings() == {
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
    }


@pytest.mark.parametrize("bad", ["shared_buffers", "=1", "Shared-Buffers=1"])
def test_a_malformed_postgres_setting_is_refused_with_the_reason(
    infra_tool: Any, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv(infra_tool.POSTGRES_SETTINGS_ENV, bad)
    with pytest.raises(infra_tool.InfraError, match="is not name=value"):
        infra_tool._postgres_extra_settings()


def test_the_store_serves_profiles_only_when_asked_for(
    infra_tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(infra_tool.STORE_DEBUG_ADDR_ENV, raising=False)
    argv, _ = infra_tool._store_prepare()
    assert "-debug-addr" not in argv
    monkeypatch.setenv(infra_tool.STORE_DEBUG_ADDR_ENV, "127.0.0.1:6060")
    argv, _ = infra_tool._store_prepare()
    assert argv[argv.index("-debug-addr") + 1] == "127.0.0.1:6060"


@pytest.mark.integration
@pytest.mark.parametrize("address", ["0.0.0.0:6060", "192.0.2.1:6060", "localhost:6060"])
def test_the_store_refuses_to_serve_profiles_beyond_loopback(infra_tool: Any, address: str) -> None:
    infra_tool.build("store")
    result = subprocess.run(
        [str(infra_tool.FERRETDB_BIN), "-listen-addr", "127.0.0.1:0", "-debug-addr", address],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "want a loopback IP" in result.stderr
