"""A pinned kustomize binary for the deploy tests, built once from the Go module proxy.

The binary lands in `<repo>/.local/bin/kustomize-<version>` (ignored by git) and is reused by
every later run; only the first build takes a while (it prints that it is building).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.go_install import REPO, go_install

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# v5.8.3 needs Go 1.27; the machines have Go 1.26.
KUSTOMIZE_PACKAGE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.2"


def ensure_kustomize(progress: Callable[[str], None] = print) -> Path:
    """The cached binary, building it with `go install` on first use."""
    return go_install(
        KUSTOMIZE_PACKAGE,
        KUSTOMIZE_VERSION,
        progress=progress,
        first_run_cost="a minute or more on a fresh machine",
    )


def build(binary: Path, target: Path) -> list[dict[str, Any]]:
    """`kustomize build` of a folder, as a list of resources."""
    result = subprocess.run(
        [str(binary), "build", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {target} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def is_custom(resource: dict[str, Any]) -> bool:
    """A resource of an operator's CRD (Strimzi, Prometheus Operator), not a built-in kind."""
    group: str = resource["apiVersion"].rpartition("/")[0]
    return group.endswith((".strimzi.io", ".coreos.com"))
