"""The service images: multi-stage, locked dependencies, non-root, no build tools, healthcheck."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
PORTS = {
    "console": 8000,
    "intake": 8001,
    "issuance": 8002,
    "rights": 8003,
    "notify": 8004,
    "audit": 8005,
}
BUILD_TOOLS = ("gcc", "build-essential", "make ", "g++", "apt-get install")


def stages(text: str) -> list[str]:
    """The Dockerfile split at each FROM: one string per stage."""
    parts = re.split(r"^(?=FROM )", text, flags=re.MULTILINE)
    return [part for part in parts if part.startswith("FROM ")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body.replace("**/", "")):
            result = not negated
    return result


@pytest.mark.parametrize("service", sorted(PORTS))
def test_image_is_multi_stage_slim_and_non_root(service: str) -> None:
    text = (DOCKER / f"{service}.Dockerfile").read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    builder, runtime = stages(text)[-2:]
    assert f"uv sync --frozen --no-dev --no-editable --package permits-{service}" in builder
    assert "--no-install-workspace" in text, "dependencies cached in their own layer"
    assert runtime.startswith("FROM ${PYTHON_IMAGE}")
    assert "COPY --from=builder /app/.venv /app/.venv" in runtime
    assert not any(tool in runtime for tool in BUILD_TOOLS)
    assert "uv" not in re.findall(r"\b\w+\b", runtime.split("HEALTHCHECK")[0]), "no uv at run time"
    user = re.search(r"^USER (\S+)", runtime, re.MULTILINE)
    assert user is not None
    assert user.group(1).split(":")[0] not in {"root", "0"}
    port = PORTS[service]
    assert f"EXPOSE {port}" in runtime
    assert f"http://127.0.0.1:{port}/healthz" in runtime.split("HEALTHCHECK", 1)[1]
    assert f'CMD ["python", "-m", "permits_{service}"]' in runtime
    assert "PERMITS_HOST=0.0.0.0" in runtime


@pytest.mark.parametrize("service", sorted(PORTS))
def test_build_context_holds_what_the_dockerfile_copies(service: str) -> None:
    text = (DOCKER / f"{service}.Dockerfile").read_text(encoding="utf-8")
    patterns = [
        line.strip()
        for line in (DOCKER / f"{service}.Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: missing in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by the .dockerignore"
    assert ignored(".venv", patterns)
    assert ignored(".local", patterns)
    assert ignored("services/common/tests", patterns)


def image_requirements(service: str) -> str:
    """`uv export` of what the image installs: the locked third-party packages of one service."""
    uv = shutil.which("uv") or str(REPO / ".local/bootstrap/bin/uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (./permits installs it into .local/bootstrap)")
    result = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--package", f"permits-{service}", "--no-hashes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("service", sorted(PORTS))
def test_lock_file_resolves_the_image_dependencies(service: str) -> None:
    assert "services/common" in image_requirements(service)


# Imports the module named by argv[1] while refusing every top-level module that an installed
# distribution outside argv[2] (comma-separated names) provides: the image has only those.
IMPORT_WITH_ONLY = """
import importlib, importlib.abc, importlib.metadata, re, sys

def normalised(name):
    return re.sub(r"[-_.]+", "-", name).lower()

allowed = set(sys.argv[2].split(","))
owners = importlib.metadata.packages_distributions()

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        providers = {normalised(d) for d in owners.get(top, ())}
        if providers and not providers & allowed:
            raise ModuleNotFoundError(f"{top} ({', '.join(sorted(providers))})", name=top)
        return None

sys.meta_path.insert(0, NotInTheImage())
importlib.import_module(sys.argv[1])
"""


@pytest.mark.parametrize("service", sorted(PORTS))
def test_the_entry_point_imports_with_only_the_image_dependencies(service: str) -> None:
    """The suite runs in a venv holding every service's packages; an image holds one's only.

    A shared module importing a package that only some services declare (Faust, once) passes
    every other test and fails the image at start-up.
    """
    requirements = image_requirements(service)
    names = {
        re.sub(r"[-_.]+", "-", match.group(1)).lower()
        for match in re.finditer(
            r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==", requirements, re.M
        )
    }
    names |= {"permits-common", f"permits-{service}"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_WITH_ONLY,
            f"permits_{service}.main",
            ",".join(sorted(names)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
