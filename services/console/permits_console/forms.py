"""The new-application form: its fields are named after the API's field paths, so each refusal
the intake service returns (`errors[].field`) lands next to the input it is about.

Only shape is decided here (which inputs make which body); every rule stays in intake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from permits_console.services import Answer

TEXT_FIELDS = (
    "card_number",
    "applicant.name",
    "applicant.name_latin",
    "applicant.birth_date",
    "applicant.travel_permit_number",
    "applicant.phone",
    "applicant.email",
    "guardian.name",
    "guardian.relationship",
    "guardian.id_document",
    "residence.address",
    "residence.district",
    "residence.since",
    "bases.0.evidence",
    "biometrics.photo_ref",
    "biometrics.fingerprints_ref",
)
CHOICE_FIELDS = {
    "kind": ("first", "renewal", "reissue"),
    "renewal_reason": ("", "expiring", "damaged", "details_changed"),
    "applicant.sex": ("M", "F"),
    "applicant.region": ("HK", "MO", "TW"),
    "applicant.language": ("zh-Hant", "zh-Hans", "en"),
    "bases.0.type": ("employment", "residence", "study"),
    "biometrics.fingerprint_waiver": ("", "under_6", "no_fingers", "unreadable"),
}
DEFAULTS = {
    "kind": "first",
    "applicant.sex": "M",
    "applicant.region": "HK",
    "applicant.language": "zh-Hant",
    "bases.0.type": "employment",
}
FIELD_IDS = {name: "f-" + name.replace(".", "-") for name in (*TEXT_FIELDS, *CHOICE_FIELDS)}


def form_values(posted: Mapping[str, Any]) -> dict[str, str]:
    """The submitted inputs, trimmed, to fill the form again after a refusal."""
    values = dict(DEFAULTS)
    for name in (*TEXT_FIELDS, *CHOICE_FIELDS):
        raw = posted.get(name)
        if isinstance(raw, str):
            values[name] = raw.strip()
    return values


def _optional(values: Mapping[str, str], name: str) -> str | None:
    return values.get(name) or None


def application_body(values: Mapping[str, str], point: str) -> dict[str, Any]:
    """The `POST /api/v1/applications` body; the guardian only when any of its fields is filled."""
    guardian_fields = ("name", "relationship", "id_document")
    guardian = (
        {field: values.get(f"guardian.{field}", "") for field in guardian_fields}
        if any(values.get(f"guardian.{field}") for field in guardian_fields)
        else None
    )
    return {
        "kind": values.get("kind") or "first",
        "card_number": _optional(values, "card_number"),
        "renewal_reason": _optional(values, "renewal_reason"),
        "acceptance_point": point,
        "applicant": {
            "name": values.get("applicant.name", ""),
            "name_latin": _optional(values, "applicant.name_latin"),
            "sex": values.get("applicant.sex", ""),
            "birth_date": values.get("applicant.birth_date", ""),
            "region": values.get("applicant.region", ""),
            "travel_permit_number": values.get("applicant.travel_permit_number", ""),
            "phone": _optional(values, "applicant.phone"),
            "email": _optional(values, "applicant.email"),
            "language": values.get("applicant.language") or "zh-Hant",
        },
        "guardian": guardian,
        "residence": {
            "address": values.get("residence.address", ""),
            "district": values.get("residence.district", ""),
            "since": values.get("residence.since", ""),
        },
        "bases": [
            {"type": values.get("bases.0.type", ""), "evidence": values.get("bases.0.evidence", "")}
        ],
        "biometrics": {
            "photo_ref": _optional(values, "biometrics.photo_ref"),
            "fingerprints_ref": _optional(values, "biometrics.fingerprints_ref"),
            "fingerprint_waiver": _optional(values, "biometrics.fingerprint_waiver"),
        },
    }


def errors_by_field(
    errors: Mapping[str, list[dict[str, str]]],
) -> tuple[dict[str, list[dict[str, str]]], list[dict[str, str]]]:
    """Refusals next to a form input, and those about no input of the form (shown on top).
    A refusal of a section (`guardian`, `bases`) goes to its first input."""
    sections = {"guardian": "guardian.name", "bases": "bases.0.type", "body": "kind"}
    placed: dict[str, list[dict[str, str]]] = {}
    unplaced: list[dict[str, str]] = []
    for field, found in errors.items():
        name = sections.get(field, field)
        if name.startswith("guardian.") and name not in FIELD_IDS:
            name = "guardian.name"
        if name in FIELD_IDS:
            placed.setdefault(name, []).extend(found)
        else:
            unplaced.extend(found)
    return placed, unplaced


def refusals_of(answer: Answer) -> dict[str, list[dict[str, str]]]:
    """A refused action's reasons by field; a refusal about no field under `""` (the problem's
    own code, e.g. `invalid_state` or `extension_too_late`)."""
    found = answer.field_errors()
    if not found and isinstance(answer.body, dict):
        found[""] = [
            {
                "code": str(answer.body.get("code", "invalid_request")),
                "message": str(answer.body.get("detail", "")),
            }
        ]
    return found


def split_refusals(
    refusals: Mapping[str, list[dict[str, str]]], fields: tuple[str, ...]
) -> tuple[dict[str, list[dict[str, str]]], list[dict[str, str]]]:
    """Refusals next to one of a small form's inputs, and the rest (shown above the page)."""
    placed = {name: list(found) for name, found in refusals.items() if name in fields}
    general = [error for name, found in refusals.items() if name not in fields for error in found]
    return placed, general
