"""Prometheus helpers: one registry per process, exposition for `/metrics`.

Labels carry only codes (agency, point, outcome, rule code), never personal data.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

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
EVENTS_PUBLISHED = Counter(
    "permits_events_published_total",
    "Events published by service and topic",
    ["service", "topic"],
)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format of every metric of this process, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
