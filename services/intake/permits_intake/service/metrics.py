"""Intake's business metrics. Labels are codes only, never personal data."""

from __future__ import annotations

from prometheus_client import Counter

APPLICATIONS = Counter(
    "permits_applications_total",
    "Applications submitted, by kind, outcome (accepted|refused), first rule code and point",
    ["kind", "outcome", "code", "point"],
)
