"""Every alert fires on trouble and stays quiet without it, fed the label values the code emits.

The series come from the services' metric definitions: label names as defined, label values
as each service declares them (`permits_common.metrics.declare_label_values`). An alert that
matches a value no code emits (an outcome nobody records, a state that does not exist) never
fires here, so the test fails where production would have stayed silent. promtool
(`promtool test rules`) evaluates the real rule file, with its `for:` durations.
"""

from __future__ import annotations

import importlib
import itertools
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.metric_names import (
    ALERTS_FILE,
    declared_labels,
    declared_metrics,
    is_external,
    promql_metric_names,
)
from tests.deploy.promtool_tool import PromtoolUnavailableError, ensure_promtool

METRIC_MODULES = (
    "permits_common.metrics",
    "permits_intake.service.metrics",
    "permits_issuance.metrics",
    "permits_notify.service.metrics",
    "permits_rights.service.metrics",
    "permits_common.audit",
    "permits_audit.service.metrics",
)
UNDECLARED = "example"
"""The value given to a label whose values the code does not enumerate (a topic, a route)."""
MINUTES = 120

# Series from outside the services (deploy/README.md, "Metrics from elsewhere"):
# labels as those exporters write them, a value for trouble and one for calm.
EXTERNAL_SERIES = {
    "up": ('{job="permits-intake", instance="intake:8001"}', "0", "1"),
    "kafka_consumergroup_lag": (
        '{consumergroup="permits-issuance", topic="permits.applications.v1", partition="0"}',
        "5000",
        "0",
    ),
    "kube_pod_status_ready": (
        '{namespace="permits", pod="permits-intake-7d9f", condition="false"}',
        "1",
        "0",
    ),
}


@pytest.fixture(scope="module")
def promtool(progress: Callable[[str], None]) -> Path:
    try:
        return ensure_promtool(progress)
    except PromtoolUnavailableError as exc:
        pytest.skip(f"promtool cannot be had here: {exc}")


def declared_label_values() -> dict[str, dict[str, tuple[str, ...]]]:
    """The label values each metric declares, after importing every service's metrics."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    from permits_common.metrics import DECLARED_LABEL_VALUES

    return DECLARED_LABEL_VALUES


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def series_for(metric: str, *, trouble: bool) -> list[dict[str, str]]:
    """Input series of one metric: every combination of its declared label values."""
    if is_external(metric):
        labels, bad, good = EXTERNAL_SERIES[metric]
        return [{"series": metric + labels, "values": f"{bad if trouble else good}x{MINUTES}"}]
    kinds = declared_metrics()
    base = metric.removesuffix("_total")
    kind = kinds.get(base) or kinds[metric]
    names = sorted(declared_labels()[base if base in kinds else metric])
    values = declared_label_values().get(metric, {})
    if kind == "Counter":
        samples = f"0+5x{MINUTES}" if trouble else f"0x{MINUTES}"
    else:
        samples = f"{100 if trouble else 0}x{MINUTES}"
    series = []
    for combination in itertools.product(*(values.get(name, (UNDECLARED,)) for name in names)):
        pairs = zip(names, combination, strict=True)
        labels = ", ".join(f'{name}="{value}"' for name, value in pairs)
        series.append({"series": f"{metric}{{{labels}}}", "values": samples})
    return series


def firing_test(alert: dict[str, Any], *, trouble: bool) -> dict[str, Any]:
    """A promtool test case: the alert's inputs, and whether ALERTS shows it firing at the end."""
    inputs = [
        entry
        for metric in sorted(promql_metric_names(str(alert["expr"])))
        for entry in series_for(metric, trouble=trouble)
    ]
    firing = f'ALERTS{{alertname="{alert["alert"]}", alertstate="firing"}}'
    return {
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [
            {
                "expr": f"(count({firing}) > bool 0) or vector(0)",
                "eval_time": f"{MINUTES - 1}m",
                "exp_samples": [{"labels": "{}", "value": 1 if trouble else 0}],
            }
        ],
    }


def run_promtool(promtool: Path, tmp_path: Path, tests: list[dict[str, Any]]) -> str:
    rules = tmp_path / "alerts.yml"
    rules.write_text(ALERTS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests}),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(promtool), "test", "rules", spec.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_every_alert_metric_declares_the_label_values_its_matchers_use() -> None:
    values = declared_label_values()
    for alert in alerts():
        for metric in promql_metric_names(str(alert["expr"])):
            if not is_external(metric):
                assert metric in values, f"{alert['alert']}: {metric} declares no label values"


@pytest.mark.parametrize("alert", alerts(), ids=lambda rule: rule["alert"])
def test_alert_fires_on_trouble_and_not_on_calm(
    alert: dict[str, Any], promtool: Path, tmp_path: Path
) -> None:
    run_promtool(
        promtool,
        tmp_path,
        [firing_test(alert, trouble=True), firing_test(alert, trouble=False)],
    )


def test_an_alert_on_a_value_no_code_emits_is_caught(promtool: Path, tmp_path: Path) -> None:
    broken = next(rule for rule in alerts() if rule["alert"] == "PermitsAgencyDeliveryFailing")
    broken = {**broken, "expr": str(broken["expr"]).replace('=~"retry|deadletter"', '="failed"')}
    rules = {"groups": [{"name": "broken", "rules": [broken]}]}
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    spec = {
        "rule_files": ["broken.yml"],
        "evaluation_interval": "1m",
        "tests": [firing_test(broken, trouble=True)],
    }
    (tmp_path / "broken_test.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = subprocess.run(
        [str(promtool), "test", "rules", "broken_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, "an alert on outcome='failed' (never emitted) must not fire"
