"""A pinned kustomize binary for the deploy tests, built once from the Go module proxy.

The binary lands in `<repo>/.local/bin/kustomize-<version>` (ignored by git) and is reused by
every later run; only the first build takes a while (it prints that it is building).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# v5.8.3 needs Go 1.27; the machines have Go 1.26.
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.2"
BIN_DIR = REPO / ".local" / "bin"
BINARY = BIN_DIR / f"kustomize-{KUSTOMIZE_VERSION}"


class KustomizeUnavailableError(RuntimeError):
    """Raised when no Go toolchain is there to build kustomize with."""


def ensure_kustomize(progress: Callable[[str], None] = print) -> Path:
    """The cached binary, building it with `go install` on first use."""
    if BINARY.exists():
        return BINARY
    go = shutil.which("go")
    if go is None:
        raise KustomizeUnavailableError("the `go` command is not installed")
    progress(
        f"building kustomize {KUSTOMIZE_VERSION} with `go install` into {BINARY.relative_to(REPO)} "
        "(first run only; a minute or more on a fresh machine) ..."
    )
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BIN_DIR) as gobin:
        env = {**os.environ, "GOBIN": gobin, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        result = subprocess.run(
            [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"go install of kustomize failed:\n{result.stderr[-4000:]}")
        # Renamed into place in one step, so a concurrent run never sees half a binary.
        os.replace(Path(gobin) / "kustomize", BINARY)
    progress("kustomize built")
    return BINARY


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
