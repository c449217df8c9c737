"""The Strimzi topics, the PrometheusRule and the Kafka users match the sources they come from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from permits_common.events import topics

REPO = Path(__file__).resolve().parents[2]
TOPICS_FILE = REPO / "deploy" / "k8s" / "base" / "kafka" / "topics.yaml"


def load_generator() -> ModuleType:
    """deploy/k8s/generate.py is a script, not a package: import it from its path."""
    path = REPO / "deploy" / "k8s" / "generate.py"
    spec = importlib.util.spec_from_file_location("permits_k8s_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def declared_topics() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(TOPICS_FILE.read_text(encoding="utf-8")) if doc]


def test_generated_manifests_are_up_to_date() -> None:
    for path, content in load_generator().outputs().items():
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.relative_to(REPO)} is stale: run .venv/bin/python deploy/k8s/generate.py"
        )


def test_every_catalog_topic_is_declared_once_with_its_settings() -> None:
    declared = {doc["spec"]["topicName"]: doc for doc in declared_topics()}
    assert len(declared) == len(declared_topics()), "a topic is declared twice"
    assert set(declared) == {spec.name for spec in topics.TOPICS}
    for spec in topics.TOPICS:
        resource = declared[spec.name]
        assert resource["kind"] == "KafkaTopic"
        assert resource["spec"]["partitions"] == spec.partitions
        assert resource["spec"]["replicas"] == 3
        config = resource["spec"]["config"]
        assert config["min.insync.replicas"] == 2
        assert (config["cleanup.policy"] == "compact") == spec.compacted, spec.name


@pytest.mark.parametrize("agency_topic", [s.name for s in topics.TOPICS if s.compacted])
def test_agency_feeds_are_compacted(agency_topic: str) -> None:
    assert agency_topic.startswith("permits.rights.")
    assert agency_topic.endswith(".v1")


def test_the_prometheus_rule_carries_the_compose_alerts() -> None:
    alerts = yaml.safe_load((REPO / "deploy/monitoring/prometheus/alerts.yml").read_text())
    rule_file = REPO / "deploy/k8s/base/monitoring/prometheus-rule.yaml"
    rule = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"]
    names = {r["alert"] for group in alerts["groups"] for r in group["rules"]}
    assert names == {
        "PermitsDeadlinesAtRisk",
        "PermitsDeadlineBreached",
        "PermitsConsumerLagHigh",
        "PermitsDeadLettersGrowing",
        "PermitsAgencyDeliveryFailing",
        "PermitsServiceDown",
        "PermitsPodNotReady",
        "PermitsAuditChainBroken",
        "PermitsAuditConsumerLagging",
        "PermitsAuditEntriesUnpublished",
    }
