"""The local broker's JVM flags: C1 only by default, and the environment can add to them."""

from __future__ import annotations

from types import ModuleType

import pytest


def test_the_broker_compiles_with_c1_only_by_default(
    infra_tool: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERMITS_KAFKA_JVM_OPTIONS", raising=False)
    options = infra_tool.kafka_jvm_options()
    assert "-XX:TieredStopAtLevel=1" in options
    assert "-Xmx512m" in options


def test_flags_from_the_environment_come_last_so_they_win(
    infra_tool: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERMITS_KAFKA_JVM_OPTIONS", " -XX:TieredStopAtLevel=4  -Xmx1g ")
    options = infra_tool.kafka_jvm_options()
    assert options[-2:] == ["-XX:TieredStopAtLevel=4", "-Xmx1g"]
    assert options.index("-XX:TieredStopAtLevel=1") < options.index("-XX:TieredStopAtLevel=4")
