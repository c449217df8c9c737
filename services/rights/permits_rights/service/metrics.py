"""The rights service's own Prometheus metrics (labels: agency keys and outcomes only)."""

from __future__ import annotations

import bisect
import collections
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from permits_common.domain.agencies import Agency
from permits_common.metrics import declare_label_values

AGENCY_KEYS = tuple(agency.value for agency in Agency)
DELIVERY_OUTCOMES = ("published", "delivered", "retry", "deadletter")
"""`published`: on the agency's topic; `delivered`: webhook answered 2xx; `retry`: a webhook
attempt failed and will be retried; `deadletter`: retries exhausted, parked for an operator."""

DELIVERIES = Counter(
    "permits_rights_deliveries_total",
    "Holder status deliveries by agency and outcome (published, delivered, retry, deadletter)",
    ["agency", "outcome"],
)
declare_label_values(DELIVERIES, agency=AGENCY_KEYS, outcome=DELIVERY_OUTCOMES)
DELIVERY_LAG = Histogram(
    "permits_rights_delivery_lag_seconds",
    "From the status change (event time) to the agency having it (topic ack or webhook 2xx)",
    ["agency"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
VERIFY_REQUESTS = Counter(
    "permits_verify_requests_total",
    "Verification requests by agency and result (a verification status, or rate_limited)",
    ["agency", "result"],
)
REGISTER_CARDS = Gauge("permits_rights_register_cards", "Card numbers in the in-memory register")
PENDING_WEBHOOKS = Gauge(
    "permits_rights_webhook_pending", "Webhook deliveries waiting, by agency", ["agency"]
)


def observe_all(
    histogram: Histogram, label_values: Sequence[str], amounts: Sequence[float]
) -> None:
    """What `histogram.labels(value).observe(amount)` for every label value and amount gives
    (bucket counts and sum), with each amount's bucket found once and each bucket counted
    once per label value: a batch of card events gives every agency the same lags, a million
    observations per 100,000 cards one by one."""
    if not amounts:
        return
    children = [histogram.labels(value) for value in label_values]
    bounds = children[0]._upper_bounds
    per_bucket = collections.Counter(bisect.bisect_left(bounds, amount) for amount in amounts)
    total = sum(amounts)
    for child in children:
        child._sum.inc(total)
        for bucket, count in per_bucket.items():
            child._buckets[bucket].inc(count)
