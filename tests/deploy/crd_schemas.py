"""The CRDs our custom resources must satisfy, and their JSON Schemas for kubeconform.

Both operators' CRDs come from package registries, pinned, once, into `<repo>/.local/crds/`:

- Strimzi publishes no CRD YAML as a package; it generates the CRDs from its API model classes
  with its own `crd-generator`. The two jars of the pinned release come from Maven Central
  (`mvn dependency:copy`) and the generator writes the `v1` KafkaTopic and KafkaUser CRDs, as
  Strimzi's build does. Its classes need Java 21 or later.
- prometheus-operator's module on the Go module proxy ships its CRDs
  (`example/prometheus-operator-crd/`); `go mod download` brings the pinned version.

The JSON Schemas are derived from the CRDs on every run (it takes a moment): each served version
of a CRD becomes `<group>/<kind>_<version>.json`, with unknown fields refused wherever the API
server would prune them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.go_install import REPO

CRD_DIR = REPO / ".local" / "crds"

STRIMZI_VERSION = "1.2.0"
STRIMZI_API_VERSION = "v1"
STRIMZI_MODELS = {
    "kafkatopics.yaml": "io.strimzi.api.kafka.model.topic.KafkaTopic",
    "kafkausers.yaml": "io.strimzi.api.kafka.model.user.KafkaUser",
}
STRIMZI_GENERATOR = "io.strimzi.crdgenerator.CrdGenerator"
STRIMZI_MIN_JAVA = 21

PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_OPERATOR_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")

SCHEMA_FILE = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
"""kubeconform's `-schema-location` template, below the schema folder."""

Progress = Callable[[str], None]


class CrdSourceUnavailableError(RuntimeError):
    """Raised when a tool needed to fetch or generate the CRDs (mvn, Java 21+, go) is missing."""


def strimzi_crds(progress: Progress) -> Path:
    """The folder of the pinned Strimzi release's CRDs, generated on first use."""
    target = CRD_DIR / f"strimzi-{STRIMZI_VERSION}"
    if target.is_dir():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise CrdSourceUnavailableError("the `mvn` command is not installed")
    java = find_java(STRIMZI_MIN_JAVA)
    progress(
        f"fetching Strimzi {STRIMZI_VERSION}'s api and crd-generator jars with Maven and "
        f"generating its CRDs into {target.relative_to(REPO)} (first run only; about 20 s) ..."
    )
    with _scratch() as scratch:
        jars = []
        for artifact in ("api", "crd-generator"):
            coordinates = f"io.strimzi:{artifact}:{STRIMZI_VERSION}"
            _run(
                [mvn, "-q", "-B", "-Dstyle.color=never", "dependency:copy",
                 f"-Dartifact={coordinates}", f"-DoutputDirectory={scratch / 'jars'}"],
                f"Maven could not fetch {coordinates} (is Maven Central reachable?)",
                cwd=scratch,
            )  # fmt: skip
            jars.append(scratch / "jars" / f"{artifact}-{STRIMZI_VERSION}.jar")
        out = scratch / "crds"
        out.mkdir()
        _run(
            [java, "-cp", os.pathsep.join(map(str, jars)), STRIMZI_GENERATOR,
             "--crd-api-version", "v1",
             "--api-versions", STRIMZI_API_VERSION,
             "--storage-version", STRIMZI_API_VERSION,
             "--yaml",
             *(f"{model}={out / name}" for name, model in STRIMZI_MODELS.items())],
            f"Strimzi's CRD generator failed ({java})",
            cwd=scratch,
        )  # fmt: skip
        _publish(out, target)
    progress("Strimzi CRDs ready")
    return target


def prometheus_operator_crds(progress: Progress) -> Path:
    """The folder of the pinned prometheus-operator release's CRDs, fetched on first use."""
    target = CRD_DIR / f"prometheus-operator-{PROMETHEUS_OPERATOR_VERSION}"
    if target.is_dir():
        return target
    go = shutil.which("go")
    if go is None:
        raise CrdSourceUnavailableError("the `go` command is not installed")
    module = f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}"
    progress(
        f"fetching the CRDs of {module} with `go mod download` into {target.relative_to(REPO)} "
        "(first run only; a few seconds) ..."
    )
    with _scratch() as scratch:
        listing = _run(
            [go, "mod", "download", "-json", module],
            f"go mod download {module} failed (is the Go module proxy reachable?)",
            cwd=scratch,
            env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""},
        )
        source = Path(json.loads(listing)["Dir"]) / "example" / "prometheus-operator-crd"
        out = scratch / "crds"
        out.mkdir()
        for plural in PROMETHEUS_OPERATOR_CRDS:
            name = f"monitoring.coreos.com_{plural}.yaml"
            shutil.copyfile(source / name, out / name)
        _publish(out, target)
    progress("prometheus-operator CRDs ready")
    return target


def find_java(min_major: int) -> str:
    """A `java` of at least that major version: JAVA_HOME's, the PATH's, or an installed JDK's."""
    candidates = []
    if "JAVA_HOME" in os.environ:
        candidates.append(str(Path(os.environ["JAVA_HOME"], "bin", "java")))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java"))
    seen = []
    for java in candidates:
        major = java_major_version(java)
        if major is not None and major >= min_major:
            return java
        seen.append(f"{java} ({major or 'unusable'})")
    raise CrdSourceUnavailableError(
        f"Strimzi's CRD generator needs Java {min_major} or later; found only: "
        f"{', '.join(seen) or 'no java'} (set JAVA_HOME to a newer JDK)"
    )


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0_x"), None if it cannot run."""
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr)
    if result.returncode != 0 or match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def write_json_schemas(crd_dirs: Iterable[Path], out: Path) -> dict[tuple[str, str], Path]:
    """One JSON Schema file per served version of every CRD found; (apiVersion, kind) -> file."""
    written = {}
    for crd_dir in crd_dirs:
        for crd_file in sorted(crd_dir.glob("*.yaml")):
            for crd in yaml.safe_load_all(crd_file.read_text()):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if not version.get("served", True):
                        continue
                    schema = json_schema(version["schema"]["openAPIV3Schema"])
                    path = out / group / f"{kind.lower()}_{version['name']}.json"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(schema, indent=1))
                    written[(f"{group}/{version['name']}", kind)] = path
    return written


def json_schema(node: dict[str, Any], *, junctor: bool = False) -> dict[str, Any]:
    """A CRD's structural OpenAPI v3 schema as JSON Schema, as strict as the API server.

    - An object with declared `properties` refuses any other field, unless the CRD keeps unknown
      fields there (`x-kubernetes-preserve-unknown-fields`) or declares `additionalProperties`.
    - `nullable: true` admits null, as the API server does.
    - `x-kubernetes-int-or-string` without its own `anyOf` admits an integer or a string.

    Inside `allOf`/`anyOf`/`oneOf`/`not` (a `junctor`, and all below it) `properties` only
    repeat fields of the enclosing schema, so nothing there refuses fields itself.
    """
    schema = {key: value for key, value in node.items() if key != "nullable"}
    if "properties" in node:
        schema["properties"] = {
            name: json_schema(child, junctor=junctor) for name, child in node["properties"].items()
        }
        if (
            not junctor
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            schema[key] = json_schema(node[key], junctor=junctor)
    if "not" in node:
        schema["not"] = json_schema(node["not"], junctor=True)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            schema[key] = [json_schema(child, junctor=True) for child in node[key]]
    if node.get("nullable") is True:
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if node.get("x-kubernetes-int-or-string") is True and "anyOf" not in schema:
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return schema


def _run(
    command: list[str],
    failure: str,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise RuntimeError(f"{failure}:\n{output}")
    return result.stdout


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder beside the cache, so that publishing it is one rename."""
    CRD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CRD_DIR, prefix=".partial-") as scratch:
        yield Path(scratch)


def _publish(built: Path, target: Path) -> None:
    """Move a completed folder into the cache; a concurrent run that got there first wins."""
    try:
        built.rename(target)
    except OSError:
        if not target.is_dir():
            raise
