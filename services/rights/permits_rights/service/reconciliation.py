"""Reconciliation: does each agency have what the register says it should?

For every status, `register` counts card issues now at that status, `sent` those whose current
status the broker acknowledged on the agency's topic, and `confirmed` those the agency has
acknowledged: its webhook answered 2xx, or, for a topic-only agency, the broker acknowledged the
publication. `missing = register - confirmed`, 0 when the agency has converged.
"""

from __future__ import annotations

from typing import Any

from permits_rights.adapters.store import HolderStore
from permits_rights.domain.policy import AgencyPolicy


async def reconcile(policy: AgencyPolicy, holders: HolderStore, webhook: bool) -> dict[str, Any]:
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
    counts = await holders.counts(policy.agency.value, webhook)
    by_status = {
        status: {
            "register": register,
            "sent": sent,
            "confirmed": confirmed,
            "missing": register - confirmed,
        }
        for status, (register, sent, confirmed) in counts.items()
    }
    return {
        "agency": policy.agency.value,
        "channels": channels,
        "by_status": by_status,
        "missing": sum(row["missing"] for row in by_status.values()),
    }
