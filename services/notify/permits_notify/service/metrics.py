"""Metrics of the notify service; labels carry codes only, never a phone or an address."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "permits_notifications_total",
    "Notification outcomes by message type, channel and outcome "
    "(sent, delivered, retry, deferred, fallback, failed, no_recipient, no_contact)",
    ["type", "channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "permits_notification_send_seconds",
    "Time to hand one message to the SMTP server or SMS gateway",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
