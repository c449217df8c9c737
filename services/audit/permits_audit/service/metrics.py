"""Metrics of the audit service; labels are partition numbers only, never personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from permits_common.metrics import declare_label_values

ENTRIES_STORED = Counter("permits_audit_entries_stored_total", "Audit entries appended")
CHAIN_ENTRIES = Gauge(
    "permits_audit_chain_entries", "Entries found by the last chain check, by chain", ["chain"]
)
CHAIN_BROKEN = Gauge(
    "permits_audit_chain_broken",
    "1 when the last periodic chain check found a broken chain, 0 when every chain is intact",
)
CHAIN_CHECKED_AT = Gauge(
    "permits_audit_chain_checked_timestamp_seconds", "When the chain was last checked (Unix)"
)
CONSUMER_LAG = Gauge(
    "permits_audit_consumer_lag",
    "Audit events on the topic not yet stored in the trail, by partition",
    ["partition"],
)
RETENTION_REMOVED = Counter(
    "permits_audit_retention_removed_total", "Entries removed after the retention period"
)

declare_label_values(CHAIN_BROKEN)
declare_label_values(CONSUMER_LAG)
