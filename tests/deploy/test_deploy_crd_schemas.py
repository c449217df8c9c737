"""The Strimzi and Prometheus Operator resources satisfy the CRDs of the releases we support.

kubeconform checks every custom resource of both built overlays against JSON Schemas derived
from the CRDs of the pinned releases (`crd_schemas.py`): Strimzi's `v1` KafkaTopic and KafkaUser,
prometheus-operator's ServiceMonitor and PrometheusRule. The built-in kinds are checked against
the Kubernetes schemas in `test_deploy_kustomize.py`. What the CRDs cannot express (Strimzi's
CEL rules, what an operator does with a value) is out of reach here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.crd_schemas import json_schema
from tests.deploy.kubeconform_tool import validate
from tests.deploy.kustomize_tool import OVERLAYS, is_custom

Resource = dict[str, Any]


def problems(report: dict[str, Any]) -> list[str]:
    """One line per resource kubeconform did not find valid, with what it found."""
    lines = []
    for result in report["resources"]:
        if result["status"] == "statusValid":
            continue
        errors = "; ".join(f"{e['path']}: {e['msg']}" for e in result.get("validationErrors", []))
        lines.append(
            f"{result['kind']}/{result['name']}: {result['status']} {errors or result['msg']}"
        )
    return lines


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_satisfy_the_operators_crds(
    overlay: str,
    rendered: dict[str, list[Resource]],
    kubeconform: Path,
    crd_schema_location: str,
    tmp_path: Path,
) -> None:
    custom = [r for r in rendered[overlay] if is_custom(r)]
    kinds = {r["kind"] for r in custom}
    assert {"KafkaTopic", "ServiceMonitor", "PrometheusRule"} <= kinds
    if overlay == "prod":
        assert "KafkaUser" in kinds
    report = validate(kubeconform, [crd_schema_location], custom, tmp_path)
    assert not problems(report), "\n".join(problems(report))
    assert report["summary"] == {"valid": len(custom), "invalid": 0, "errors": 0, "skipped": 0}


def one(resources: list[Resource], kind: str) -> Resource:
    """A deep copy of the first resource of that kind, to break on purpose."""
    return copy.deepcopy(next(r for r in resources if r["kind"] == kind))


def partitions_in_words(topic: Resource) -> None:
    topic["spec"]["partitions"] = "three"


def an_unknown_topic_field(topic: Resource) -> None:
    topic["spec"]["retentionMs"] = 86_400_000


def an_operation_kafka_does_not_have(user: Resource) -> None:
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Read", "Fly"]


def a_misspelt_endpoint_field(monitor: Resource) -> None:
    endpoint = monitor["spec"]["endpoints"][0]
    endpoint["honourLabels"] = endpoint.pop("honorLabels")


def a_duration_in_words(rule: Resource) -> None:
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"


@pytest.mark.parametrize(
    ("kind", "breakage", "path", "words"),
    [
        ("KafkaTopic", partitions_in_words, "/spec/partitions", "want integer"),
        ("KafkaTopic", an_unknown_topic_field, "/spec", "'retentionMs' not allowed"),
        ("KafkaUser", an_operation_kafka_does_not_have, "/spec/authorization/acls/0/operations/1",
         "must be one of"),
        ("ServiceMonitor", a_misspelt_endpoint_field, "/spec/endpoints/0",
         "'honourLabels' not allowed"),
        ("PrometheusRule", a_duration_in_words, "/spec/groups/0/rules/0/for", "does not match"),
    ],
)  # fmt: skip
def test_a_custom_resource_that_breaks_its_crd_is_refused(
    kind: str,
    breakage: Callable[[Resource], None],
    path: str,
    words: str,
    rendered: dict[str, list[Resource]],
    kubeconform: Path,
    crd_schema_location: str,
    tmp_path: Path,
) -> None:
    good = one(rendered["prod"], kind)
    bad = copy.deepcopy(good)
    breakage(bad)
    bad["metadata"]["name"] = "broken"
    report = validate(kubeconform, [crd_schema_location], [good, bad], tmp_path)
    statuses = {r["name"]: r for r in report["resources"]}
    assert statuses[good["metadata"]["name"]]["status"] == "statusValid"
    assert statuses["broken"]["status"] == "statusInvalid"
    errors = {e["path"]: e["msg"] for e in statuses["broken"]["validationErrors"]}
    assert path in errors, errors
    assert words in errors[path]


def test_a_strimzi_api_version_the_release_no_longer_serves_is_an_error(
    rendered: dict[str, list[Resource]],
    kubeconform: Path,
    crd_schema_location: str,
    tmp_path: Path,
) -> None:
    topic = one(rendered["prod"], "KafkaTopic")
    topic["apiVersion"] = "kafka.strimzi.io/v1beta2"
    report = validate(kubeconform, [crd_schema_location], [topic], tmp_path)
    assert report["summary"] == {"valid": 0, "invalid": 0, "errors": 1, "skipped": 0}
    assert "could not find schema for KafkaTopic" in report["resources"][0]["msg"]


def test_declared_fields_are_closed_unless_the_crd_keeps_unknown_ones() -> None:
    crd_schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "port": {"x-kubernetes-int-or-string": True},
                    "note": {"type": "string", "nullable": True, "enum": ["a", "b"]},
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    },
                },
                "anyOf": [{"properties": {"port": {}}, "required": ["port"]}],
            }
        },
    }
    spec = json_schema(crd_schema)["properties"]["spec"]
    assert spec["additionalProperties"] is False
    fields = spec["properties"]
    assert "additionalProperties" not in fields["config"]
    assert fields["labels"]["additionalProperties"] == {"type": "string"}
    assert fields["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert fields["note"]["type"] == ["string", "null"]
    assert fields["note"]["enum"] == ["a", "b", None]
    assert "nullable" not in fields["note"]
    assert fields["items"]["items"]["additionalProperties"] is False
    # A junctor repeats fields of the enclosing schema: it refuses none itself.
    assert "additionalProperties" not in spec["anyOf"][0]
