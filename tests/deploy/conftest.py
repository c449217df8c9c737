"""Fixtures of the deploy tests: the kustomize binary and the rendered overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize_tool import (
    K8S,
    OVERLAYS,
    KustomizeUnavailableError,
    build,
    ensure_kustomize,
)


@pytest.fixture(scope="session")
def kustomize(request: pytest.FixtureRequest) -> Path:
    """The pinned kustomize binary; its first build is announced on the terminal."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    terminal = request.config.pluginmanager.getplugin("terminalreporter")

    def progress(message: str) -> None:
        if terminal is None:
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"[deploy] {message}")

    try:
        return ensure_kustomize(progress)
    except KustomizeUnavailableError as exc:
        pytest.skip(f"kustomize cannot be built here: {exc}")


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, list[dict[str, Any]]]:
    """`kustomize build` of every overlay, once per session."""
    return {overlay: build(kustomize, K8S / "overlays" / overlay) for overlay in OVERLAYS}
