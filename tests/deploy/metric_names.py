"""Which metric names the alerts and the dashboard use, and which ones the services export.

Used by test_deploy_metrics.py (against the metric definitions in the services' code) and meant
for the end-to-end suite too (against the live `/metrics` of running services):

    from tests.deploy.metric_names import names_in_exposition, used_metric_names
    missing = set(used_metric_names()) - names_in_exposition(scraped_text)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS_FILE = REPO / "deploy" / "monitoring" / "prometheus" / "alerts.yml"
RULE_FILE = REPO / "deploy" / "k8s" / "base" / "monitoring" / "prometheus-rule.yaml"
DASHBOARD_FILE = REPO / "deploy" / "monitoring" / "grafana" / "dashboards" / "permits.json"
SERVICES = REPO / "services"

# Series that come from outside our services (deploy/README.md, "Metrics from elsewhere").
EXTERNAL_METRICS = frozenset({"up", "kafka_consumergroup_lag"})
EXTERNAL_PREFIXES = ("kube_",)  # kube-state-metrics

_PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
    | {"and", "or", "unless", "offset", "atan2", "inf", "nan"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_LIST = re.compile(r"\[([^\[\]]*)\]")
_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*(?:name\s*=\s*)?"
    r"[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression (not functions, labels, keywords or durations)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def _rule_exprs(groups: list[dict[str, Any]]) -> Iterator[str]:
    for group in groups:
        for rule in group["rules"]:
            yield str(rule["expr"])


def monitoring_queries() -> dict[str, list[str]]:
    """Every PromQL expression of the alerts (both files) and the Grafana dashboard."""
    alerts = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    rule = next(
        doc
        for doc in yaml.safe_load_all(RULE_FILE.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "PrometheusRule"
    )
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return {
        "alerts.yml": list(_rule_exprs(alerts["groups"])),
        "PrometheusRule": list(_rule_exprs(rule["spec"]["groups"])),
        "dashboard": list(_dashboard_exprs(dashboard)),
    }


def is_external(name: str) -> bool:
    """A series from Prometheus itself, the Strimzi kafka-exporter or kube-state-metrics."""
    return name in EXTERNAL_METRICS or name.startswith(EXTERNAL_PREFIXES)


def used_metric_names(*, include_external: bool = False) -> dict[str, set[str]]:
    """Metric name → where it is used ("alerts.yml", "PrometheusRule", "dashboard")."""
    used: dict[str, set[str]] = {}
    for source, exprs in monitoring_queries().items():
        for expr in exprs:
            for name in promql_metric_names(expr):
                if include_external or not is_external(name):
                    used.setdefault(name, set()).add(source)
    return used


def declared_metrics(root: Path = SERVICES) -> dict[str, str]:
    """Metric name → kind, from the prometheus-client definitions in the services' code."""
    declared: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        if "tests" in path.relative_to(root).parts:
            continue
        for kind, name in _DEFINITION.findall(path.read_text(encoding="utf-8")):
            declared[name] = kind
    return declared


def declared_labels(root: Path = SERVICES) -> dict[str, set[str]]:
    """Metric name → its label names, from the definitions' label lists (`["agency", ...]`)."""
    labels: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "tests" in path.relative_to(root).parts:
            continue
        text = path.read_text(encoding="utf-8")
        matches = list(_DEFINITION.finditer(text))
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            call = text[match.end() : end]
            names = _LABEL_LIST.search(call.split("buckets", 1)[0])
            found = (
                re.findall(r"[\"']([a-zA-Z_][a-zA-Z0-9_]*)[\"']", names.group(1)) if names else []
            )
            labels[match.group(2)] = set(found)
    return labels


def base_metric(series: str, declared: dict[str, str]) -> str | None:
    """The definition a series name belongs to (`x_bucket` → `x`, `x_total` → `x_total`)."""
    for suffix in ("", "_bucket", "_sum", "_count", "_created", "_info"):
        if suffix and not series.endswith(suffix):
            continue
        candidate = series.removesuffix(suffix) if suffix else series
        if candidate in declared:
            return candidate
        if f"{candidate}_total" in declared:
            return f"{candidate}_total"
    return None


def promql_label_uses(expr: str) -> dict[str, set[str]]:
    """Label names each metric is filtered or grouped by in one expression.

    Matchers belong to the metric they follow; `by (...)` and `without (...)` labels are
    attributed to every metric of the expression (our queries aggregate one metric each).
    """
    text = _STRINGS.sub('""', expr)
    uses: dict[str, set[str]] = {}
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}", text):
        names = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(2)))
        uses.setdefault(match.group(1), set()).update(names)
    grouped: set[str] = set()
    for match in re.finditer(r"\b(?:by|without)\s*\(([^()]*)\)", text):
        grouped |= {label.strip() for label in match.group(1).split(",") if label.strip()}
    for name in promql_metric_names(expr):
        uses.setdefault(name, set()).update(grouped)
    return uses


def exported_series(declared: dict[str, str]) -> set[str]:
    """The series names prometheus-client exposes for these definitions."""
    series: set[str] = set()
    for name, kind in declared.items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            series |= {f"{base}_total", f"{base}_created"}
        elif kind == "Histogram":
            series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
        elif kind == "Summary":
            series |= {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
        elif kind == "Info":
            series.add(f"{name}_info")
        else:
            series.add(name)
    return series


def names_in_exposition(text: str) -> set[str]:
    """Series names in a Prometheus text-format scrape (the body of `GET /metrics`)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
