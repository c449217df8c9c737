"""Every PERMITS_* variable the deployment sets is a setting some service really reads.

pydantic-settings ignores unknown variables (extra="ignore"), so a misspelt name would be
dropped without a word; these tests catch it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "issuance", "rights", "notify", "audit")
SIMULATOR_MODULES = ("permits_issuance.simulator.app",)


def settings_variables(module_name: str) -> set[str]:
    """The environment variable of every field of every settings class in a module."""
    module = importlib.import_module(module_name)
    names = set()
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value is not BaseSettings
        ):
            prefix = value.model_config.get("env_prefix", "")
            names |= {f"{prefix}{field}".upper() for field in value.model_fields}
    return names


def service_variables(service: str) -> set[str]:
    return settings_variables(f"permits_{service}.config")


def permits_names(names: Any) -> set[str]:
    return {name for name in names if name.startswith("PERMITS_")}


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_only_real_settings(service: str) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    used = permits_names(compose["services"][service]["environment"])
    assert used
    assert used <= service_variables(service), sorted(used - service_variables(service))


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_sets_only_real_settings(service: str) -> None:
    text = (REPO / "deploy" / "docker" / f"{service}.Dockerfile").read_text(encoding="utf-8")
    used = set(re.findall(r"\b(PERMITS_[A-Z0-9_]+)=", text))
    assert used <= service_variables(service), sorted(used - service_variables(service))


def test_env_example_names_only_real_settings() -> None:
    known = set().union(*(service_variables(s) for s in SERVICES))
    for module in SIMULATOR_MODULES:
        known |= settings_variables(module)
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    used = set(re.findall(r"^#?\s*(PERMITS_[A-Z0-9_]+)=", text, re.MULTILINE))
    assert used <= known, sorted(used - known)


def test_kubernetes_sets_only_real_settings(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, resources in rendered.items():
        configmaps = {
            r["metadata"]["name"]: r.get("data", {}) for r in resources if r["kind"] == "ConfigMap"
        }
        for service in SERVICES:
            deployment = next(
                r
                for r in resources
                if r["kind"] == "Deployment" and r["metadata"]["name"] == f"permits-{service}"
            )
            app = deployment["spec"]["template"]["spec"]["containers"][0]
            used = permits_names(v["name"] for v in app.get("env", []))
            for source in app["envFrom"]:
                if "configMapRef" in source:
                    used |= permits_names(configmaps[source["configMapRef"]["name"]])
            unknown = used - service_variables(service)
            assert not unknown, f"{overlay}/{service}: {sorted(unknown)}"
