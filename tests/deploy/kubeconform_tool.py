"""kubeconform, pinned and built once, run against local JSON Schemas only.

Only `-schema-location` folders of our own are given, so kubeconform never fetches anything, and
without `-ignore-missing-schemas` a resource whose kind and version have no schema there is an
error, not a skip.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.go_install import go_install

KUBECONFORM_PACKAGE = "github.com/yannh/kubeconform/cmd/kubeconform"
KUBECONFORM_VERSION = "v0.7.0"


def ensure_kubeconform(progress: Callable[[str], None] = print) -> Path:
    """The cached binary, building it with `go install` on first use."""
    return go_install(
        KUBECONFORM_PACKAGE,
        KUBECONFORM_VERSION,
        progress=progress,
        first_run_cost="up to a minute and a half on a fresh machine",
    )


def validate(
    binary: Path,
    schema_locations: list[str],
    resources: list[dict[str, Any]],
    workdir: Path,
) -> dict[str, Any]:
    """kubeconform `-strict -summary` over the resources; its JSON report.

    The report has `resources` (one entry per resource, with `status` `statusValid`,
    `statusInvalid` or `statusError` and the `validationErrors`) and the `summary` counts.
    """
    manifest = workdir / "resources.yaml"
    manifest.write_text(yaml.safe_dump_all(resources, sort_keys=False))
    command = [str(binary), "-strict", "-summary", "-verbose", "-output", "json"]
    for location in schema_locations:
        command += ["-schema-location", location]
    result = subprocess.run(
        [*command, str(manifest)], capture_output=True, text=True, timeout=120, check=False
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(
            f"kubeconform gave no report (exit {result.returncode}):\n{result.stderr}"
        ) from None
    return report
