"""The issuance service's Prometheus metrics; labels are codes only, never personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from permits_common.domain.card import SlaState
from permits_common.metrics import declare_label_values
from permits_common.reference import acceptance_points

POINT_CODES = tuple(point.code for point in acceptance_points())

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
declare_label_values(SLA_OPEN, state=tuple(state.value for state in SlaState), point=POINT_CODES)
declare_label_values(SLA_BREACHES, point=POINT_CODES)
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
SLA_EXTENSIONS = Counter(
    "permits_sla_extensions_total",
    "Extensions of the issuing time (延长) granted, by acceptance point: a point that extends "
    "often is a signal",
    ["point"],
)
SLA_EXTENSION_DAYS = Counter(
    "permits_sla_extension_working_days_total",
    "Working days added to deadlines by extensions, by acceptance point",
    ["point"],
)
