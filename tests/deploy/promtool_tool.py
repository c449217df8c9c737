"""promtool for the alert rule tests, taken from Debian's `prometheus` package once.

Only the one binary is needed, so the package is downloaded (`apt-get download`) and unpacked
into `<repo>/.local/bin/` rather than installed: no Prometheus server is set up on the machine.
A `promtool` already on the PATH is used as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = REPO / ".local" / "bin"
BINARY = BIN_DIR / "promtool"
PACKAGE = "prometheus"


class PromtoolUnavailableError(RuntimeError):
    """Raised where neither promtool nor Debian's package tools are there."""


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise PromtoolUnavailableError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def ensure_promtool(progress: Callable[[str], None] = print) -> Path:
    """promtool from the PATH, the cache, or Debian's package (downloaded on first use)."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if BINARY.exists():
        return BINARY
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PromtoolUnavailableError("no promtool, and no apt-get/dpkg-deb to fetch it with")
    progress(f"fetching promtool from Debian's `{PACKAGE}` package (first run only) ...")
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BIN_DIR) as scratch:
        work = Path(scratch)
        try:
            _run(["apt-get", "download", PACKAGE], work)
        except PromtoolUnavailableError:
            _run(["apt-get", "update", "-qq"], work)
            _run(["apt-get", "download", PACKAGE], work)
        package = next(work.glob(f"{PACKAGE}_*.deb"))
        _run(["dpkg-deb", "-x", str(package), str(work / "root")], work)
        os.replace(work / "root" / "usr" / "bin" / "promtool", BINARY)
    progress("promtool ready")
    return BINARY
