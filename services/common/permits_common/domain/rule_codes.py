"""Stable, machine-readable codes for every rule that can refuse an application.

They appear in API errors and in `application.rejected` events, so clients can act on them;
a code is never renamed or reused for another meaning.
"""

from __future__ import annotations

from enum import StrEnum


class RuleCode(StrEnum):
    """Why an application, or a request about a card, was refused."""

    INVALID_REQUEST = "invalid_request"
    RESIDENCE_TOO_SHORT = "residence_too_short"
    RESIDENCE_NOT_IN_JINAN = "residence_not_in_jinan"
    NO_BASIS = "no_basis"
    BASIS_EVIDENCE_MISSING = "basis_evidence_missing"
    GUARDIAN_REQUIRED = "guardian_required"
    PERMIT_NUMBER_INVALID = "permit_number_invalid"
    REGION_MISMATCH = "region_mismatch"
    BIOMETRICS_MISSING = "biometrics_missing"
    FINGERPRINT_WAIVER_INVALID = "fingerprint_waiver_invalid"
    UNKNOWN_ACCEPTANCE_POINT = "unknown_acceptance_point"
    DUPLICATE_OPEN_APPLICATION = "duplicate_open_application"
    CARD_NUMBER_REQUIRED = "card_number_required"
    CARD_NUMBER_INVALID = "card_number_invalid"
    CARD_NOT_FOUND = "card_not_found"
    CARD_NOT_HOLDERS = "card_not_holders"
    CARD_NOT_REPLACEABLE = "card_not_replaceable"
    RENEWAL_REASON_REQUIRED = "renewal_reason_required"
    BIRTH_DATE_IN_FUTURE = "birth_date_in_future"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    INVALID_STATE = "invalid_state"
    COLLECTION_ADDRESS_INVALID = "collection_address_invalid"
    """A card to be posted needs a recipient, a phone, an address and a postcode."""
    EXTENSION_TOO_LONG = "extension_too_long"
    """Extensions of one deadline may not exceed 10 working days in total."""
    EXTENSION_TOO_LATE = "extension_too_late"
    """An extension is granted before the card is ready, never after (or after a refusal)."""
    SEQUENCE_EXHAUSTED = "sequence_exhausted"
    """Every permit-number sequence of the applicant's birth date and sex is taken."""
