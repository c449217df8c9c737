"""The issuance service's Prometheus metrics; labels are codes only, never personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SLA_OPEN = Gauge(
    "permits_sla_open",
    "Open applications (card not ready yet) by deadline state and acceptance point",
    ["state", "point"],
)
SLA_BREACHES = Counter(
    "permits_sla_breaches_total",
    "Deadlines breached (card not ready by the end of the due date) by acceptance point",
    ["point"],
)
ISSUE_WORKING_DAYS = Histogram(
    "permits_issue_working_days",
    "Working days from acceptance to the card being ready",
    buckets=(1, 2, 3, 5, 8, 10, 12, 15, 18, 20, 22, 25, 30, 40, 60),
)
CARDS_ISSUED = Counter(
    "permits_cards_issued_total",
    "Cards issued by application kind and holder region",
    ["kind", "region"],
)
PRODUCTION_ATTEMPTS = Counter(
    "permits_production_attempts_total",
    "Orders sent to the card production centre by outcome (accepted, failed)",
    ["outcome"],
)
