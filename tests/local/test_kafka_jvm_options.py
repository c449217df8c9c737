"""The local broker's JVM flags: C1 only by default, and the environment can add to them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

INFRA = Path(__file__).resolve().parents[2] / "deploy" / "local" / "infra.py"


def load_infra() -> ModuleType:
    """The local infrastructure tool, loaded from its path (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("permits_infra_jvm_options", INFRA)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_broker_compiles_with_c1_only_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERMITS_KAFKA_JVM_OPTIONS", raising=False)
    options = load_infra().kafka_jvm_options()
    assert "-XX:TieredStopAtLevel=1" in options
    assert "-Xmx512m" in options


def test_flags_from_the_environment_come_last_so_they_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERMITS_KAFKA_JVM_OPTIONS", " -XX:TieredStopAtLevel=4  -Xmx1g ")
    options = load_infra().kafka_jvm_options()
    assert options[-2:] == ["-XX:TieredStopAtLevel=4", "-Xmx1g"]
    assert options.index("-XX:TieredStopAtLevel=1") < options.index("-XX:TieredStopAtLevel=4")
