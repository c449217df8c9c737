"""Agency policies: which holder fields each agency may receive, and through which channels.

A field not named in an agency's policy never leaves the service for that agency: feed events,
webhook bodies and verification answers are all cut down by `allowed_fields` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from permits_common.domain.agencies import Agency
from permits_rights.domain.holder import DETAIL_FIELDS

IDENTIFYING_FIELDS: frozenset[str] = frozenset({"card_number", "issue_count", "status"})
"""Fields every per-card feed event carries (the Kafka key and the status itself)."""

ENVELOPE_FIELDS: frozenset[str] = frozenset({"agency", "changed_at"})
"""Not about the holder: which feed the event belongs to and when the status changed."""

KNOWN_FIELDS: frozenset[str] = IDENTIFYING_FIELDS | frozenset(DETAIL_FIELDS)


class PolicyError(ValueError):
    """The policy file is incomplete or names a field the register does not know."""


@dataclass(frozen=True, slots=True)
class AgencyPolicy:
    """What one agency may see and how it receives it."""

    agency: Agency
    fields: frozenset[str]
    feed: bool
    verify: bool
    aggregates: bool
    purpose: str

    def allowed(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Only the keys of `data` this agency may receive, and no empty values."""
        permitted = self.fields | ENVELOPE_FIELDS
        return {k: v for k, v in data.items() if k in permitted and v is not None}


def parse_policies(raw: Mapping[str, Any]) -> dict[Agency, AgencyPolicy]:
    """Validate the policy document: every agency listed once, only known fields, and a per-card
    feed only for agencies allowed the identifying fields."""
    agencies = raw.get("agencies")
    if not isinstance(agencies, Mapping):
        raise PolicyError("policy document needs an `agencies` mapping")
    unknown = set(agencies) - {a.value for a in Agency}
    if unknown:
        raise PolicyError(f"unknown agencies: {sorted(unknown)}")
    policies: dict[Agency, AgencyPolicy] = {}
    for agency in Agency:
        entry = agencies.get(agency.value)
        if not isinstance(entry, Mapping):
            raise PolicyError(f"agency {agency.value} has no policy")
        fields = frozenset(entry.get("fields") or ())
        if fields - KNOWN_FIELDS:
            raise PolicyError(f"{agency.value}: unknown fields {sorted(fields - KNOWN_FIELDS)}")
        feed = bool(entry.get("feed", False))
        if feed and not fields >= IDENTIFYING_FIELDS:
            raise PolicyError(f"{agency.value}: a per-card feed needs {sorted(IDENTIFYING_FIELDS)}")
        policies[agency] = AgencyPolicy(
            agency=agency,
            fields=fields,
            feed=feed,
            verify=bool(entry.get("verify", False)),
            aggregates=bool(entry.get("aggregates", False)),
            purpose=str(entry.get("purpose", "")),
        )
    return policies
