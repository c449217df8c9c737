"""Audit entries from HTTP routes: an entry that cannot be published fails the answer closed."""

from __future__ import annotations

from permits_common.audit import AuditTrail, AuditUnavailableError
from permits_common.web.auth import Principal
from permits_common.web.problems import ProblemError


async def audit_or_503(
    trail: AuditTrail,
    principal: Principal | None,
    action: str,
    subject: str,
    outcome: str,
    *,
    point: str | None = None,
    agency: str | None = None,
    purpose: str | None = None,
) -> None:
    """Record the access before answering; 503 with Retry-After when the trail is down."""
    try:
        await trail.record(
            principal, action, subject, outcome, point=point, agency=agency, purpose=purpose
        )
    except AuditUnavailableError:
        raise ProblemError(
            503,
            "service_unavailable",
            "Audit trail unavailable",
            "The access could not be recorded in the audit trail; retry shortly.",
            headers={"Retry-After": "2"},
        ) from None
