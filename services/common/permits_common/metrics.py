"""Prometheus helpers: one registry per process, exposition for `/metrics`.

Labels carry only codes (agency, point, outcome, rule code), never personal data.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import product

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from prometheus_client.metrics import MetricWrapperBase


class _PlainValue:
    """A sample's value without the lock of prometheus_client's: see `Histogram`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float) -> None:
        self.value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.value = value

    def get(self) -> float:
        return self.value

    def set_exemplar(self, exemplar: object) -> None:
        """Exemplars are not kept (the platform's Prometheus does not ask for them)."""

    def get_exemplar(self) -> None:
        return None


class Histogram(prometheus_client.Histogram):
    """prometheus_client's histogram, whose children count without a lock and find their
    bucket by bisection: for the request latency, observed on every request, that is a
    microsecond less per request (two lock round trips and a linear scan of the bounds).

    Its children must be observed from one thread only: the event loop that serves the app
    (every request's observation is made there). A scrape may run on another thread: it reads
    each value whole (one attribute read each), and may see an observation counted in its
    bucket but not yet in the sum, as it may with prometheus_client's own histogram, which
    takes one lock per value, not one per observation. The exposition is prometheus_client's
    own, from the same values (`_child_samples` is not overridden)."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._sum = _PlainValue()
        self._buckets = [_PlainValue() for _ in self._upper_bounds]

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        """Count `amount` in its bucket (the first bound not below it) and in the sum."""
        if exemplar:
            raise ValueError("exemplars are not kept")
        self._sum.value += amount
        self._buckets[bisect_left(self._upper_bounds, amount)].value += 1.0


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
