"""Command-line tools of the deploy tests, built once with `go install` from the Go module proxy.

Each binary lands in `<repo>/.local/bin/<name>-<version>` (ignored by git) and is reused by every
later run; only the first build takes a while, and it says so on the terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = REPO / ".local" / "bin"


class GoToolUnavailableError(RuntimeError):
    """Raised when no Go toolchain is there to build a tool with."""


def command_name(package: str) -> str:
    """The name `go install` gives the binary: the last path element, less a major version."""
    elements = package.rstrip("/").split("/")
    if len(elements) > 1 and re.fullmatch(r"v[0-9]+", elements[-1]):
        return elements[-2]
    return elements[-1]


def go_install(
    package: str,
    version: str,
    *,
    progress: Callable[[str], None],
    first_run_cost: str,
) -> Path:
    """The cached binary of `package@version`, built on first use.

    A failed build (the module proxy unreachable, a compile error) raises RuntimeError with
    Go's own message: that is a broken test environment, not a reason to skip.
    """
    name = command_name(package)
    binary = BIN_DIR / f"{name}-{version}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise GoToolUnavailableError("the `go` command is not installed")
    progress(
        f"building {name} {version} with `go install` into {binary.relative_to(REPO)} "
        f"(first run only; {first_run_cost}) ..."
    )
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BIN_DIR) as gobin:
        env = {**os.environ, "GOBIN": gobin, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        result = subprocess.run(
            [go, "install", f"{package}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"go install {package}@{version} failed (is the Go module proxy reachable?):\n"
                f"{result.stderr[-4000:]}"
            )
        # Renamed into place in one step, so a concurrent run never sees half a binary.
        os.replace(Path(gobin) / name, binary)
    progress(f"{name} built")
    return binary
