"""Fixtures of the deploy tests: the pinned tools, the rendered overlays, the CRD schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.crd_schemas import (
    SCHEMA_FILE,
    CrdSourceUnavailableError,
    prometheus_operator_crds,
    strimzi_crds,
    write_json_schemas,
)
from tests.deploy.go_install import GoToolUnavailableError
from tests.deploy.kubeconform_tool import ensure_kubeconform
from tests.deploy.kustomize_tool import K8S, OVERLAYS, build, ensure_kustomize


@pytest.fixture(scope="session")
def progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Writes one line to the terminal past output capture: a first run's downloads and builds."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    terminal = request.config.pluginmanager.getplugin("terminalreporter")

    def write(message: str) -> None:
        if terminal is None:
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"[deploy] {message}")

    return write


@pytest.fixture(scope="session")
def kustomize(progress: Callable[[str], None]) -> Path:
    """The pinned kustomize binary."""
    try:
        return ensure_kustomize(progress)
    except GoToolUnavailableError as exc:
        pytest.skip(f"kustomize cannot be built here: {exc}")


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, list[dict[str, Any]]]:
    """`kustomize build` of every overlay, once per session."""
    return {overlay: build(kustomize, K8S / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def kubeconform(progress: Callable[[str], None]) -> Path:
    """The pinned kubeconform binary."""
    try:
        return ensure_kubeconform(progress)
    except GoToolUnavailableError as exc:
        pytest.skip(f"kubeconform cannot be built here: {exc}")


@pytest.fixture(scope="session")
def crd_schema_location(
    progress: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """kubeconform's `-schema-location` for the JSON Schemas of the pinned operators' CRDs."""
    try:
        crd_dirs = [strimzi_crds(progress), prometheus_operator_crds(progress)]
    except CrdSourceUnavailableError as exc:
        pytest.skip(f"the operators' CRDs cannot be had here: {exc}")
    schemas = tmp_path_factory.mktemp("crd-schemas")
    write_json_schemas(crd_dirs, schemas)
    return f"{schemas}/{SCHEMA_FILE}"
