"""Reconciliation: does each agency have what the register says it should?

For every status, `register` counts card issues now at that status, `sent` those whose current
status the broker acknowledged on the agency's topic, and `confirmed` those the agency has
acknowledged: its webhook answered 2xx, or, for a topic-only agency, the broker acknowledged the
publication. `missing = register - confirmed`, 0 when the agency has converged. The register in
memory takes a status only after every agency topic acknowledged it, so `sent = register`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from permits_rights.adapters.register_changelog import RegisterRecords
from permits_rights.adapters.store import DeliveryLog
from permits_rights.domain.policy import AgencyPolicy


async def reconcile(
    policy: AgencyPolicy, records: RegisterRecords, deliveries: DeliveryLog, webhook: bool
) -> dict[str, Any]:
    """The reconciliation report of one agency."""
    channels = (["topic", "webhook"] if webhook else ["topic"]) if policy.feed else []
    if not policy.feed:
        return {
            "agency": policy.agency.value,
            "channels": channels,
            "by_status": {},
            "missing": 0,
            "note": "aggregates only: no per-card feed",
        }
    register = records.issues_by_status()
    confirmed: Counter[str] | dict[str, int] = register
    if webhook:
        confirmed = Counter(
            doc["status"]
            for doc in await deliveries.confirmed(policy.agency.value)
            if records.status_of(doc["card_number"], doc["issue_count"]) == doc["status"]
        )
    by_status = {
        status: {
            "register": count,
            "sent": count,
            "confirmed": confirmed[status],
            "missing": count - confirmed[status],
        }
        for status, count in register.items()
    }
    return {
        "agency": policy.agency.value,
        "channels": channels,
        "by_status": by_status,
        "missing": sum(row["missing"] for row in by_status.values()),
    }
