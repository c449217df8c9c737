"""Prometheus helpers: one registry per process, exposition for `/metrics`.

Labels carry only codes (agency, point, outcome, rule code), never personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUEST_SECONDS = Histogram(
    "permits_http_request_seconds",
    "HTTP request latency by service, route template, method and status class",
    ["service", "route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_CONSUMED = Counter(
    "permits_events_consumed_total",
    "Events consumed by service, topic and outcome (processed, duplicate, deadletter)",
    ["service", "topic", "outcome"],
)
EVENT_OUTCOMES = ("processed", "duplicate", "deadletter")
EVENTS_PUBLISHED = Counter(
    "permits_events_published_total",
    "Events published by service and topic",
    ["service", "topic"],
)


DECLARED_LABEL_VALUES: dict[str, dict[str, tuple[str, ...]]] = {}
"""Metric name -> label -> every value the code may give it. The alert rule tests feed
Prometheus exactly these values, so an alert matching a value no code emits is caught."""


def declare_label_values(metric: MetricWrapperBase, **values: Iterable[str]) -> None:
    """Record the values a metric's labels take; when every label is declared, create each
    combination at zero, so a rate over it exists before the first event."""
    declared = {label: tuple(options) for label, options in values.items()}
    labelnames: tuple[str, ...] = metric._labelnames
    name = metric._name + ("_total" if metric._type == "counter" else "")
    unknown = set(declared) - set(labelnames)
    if unknown:
        raise ValueError(f"{name} has no label {sorted(unknown)}")
    DECLARED_LABEL_VALUES[name] = declared
    if labelnames and set(declared) == set(labelnames):
        for combination in product(*(declared[label] for label in labelnames)):
            metric.labels(*combination)


declare_label_values(EVENTS_CONSUMED, outcome=EVENT_OUTCOMES)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format of every metric of this process, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
