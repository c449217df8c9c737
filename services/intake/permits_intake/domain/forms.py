"""The application form a clerk submits (contract.md), as data the eligibility rules can judge.

The schema is deliberately looser than the event models where a domain rule has its own code:
a malformed travel permit or waiver reason is refused with `permit_number_invalid` or
`fingerprint_waiver_invalid`, not with a generic schema error.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from permits_common.domain.card import ApplicationKind, RenewalReason
from permits_common.events.models import (
    Applicant,
    Basis,
    Biometrics,
    Collection,
    Guardian,
    Residence,
)
from permits_intake.domain.examples import CONTRACT_EXAMPLE

ShortText = Annotated[str, Field(max_length=200)]


class ApplicantForm(Applicant):
    """The applicant; the travel permit number's format is checked by a rule, per region."""

    travel_permit_number: Annotated[str, Field(min_length=1, max_length=32)]


class BiometricsForm(BaseModel):
    """Photo and fingerprint references, or a waiver reason checked by a rule."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    photo_ref: ShortText | None = None
    fingerprints_ref: ShortText | None = None
    fingerprint_waiver: Annotated[str, Field(max_length=50)] | None = None


class ApplicationForm(BaseModel):
    """Body of `POST /api/v1/applications`: first application, renewal or reissue."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={"examples": [CONTRACT_EXAMPLE]},
    )

    kind: ApplicationKind
    card_number: Annotated[str, Field(max_length=32)] | None = None
    renewal_reason: RenewalReason | None = None
    acceptance_point: Annotated[str, Field(min_length=1, max_length=32)]
    applicant: ApplicantForm
    guardian: Guardian | None = None
    residence: Residence
    bases: Annotated[list[Basis], Field(max_length=10)]
    biometrics: BiometricsForm
    collection: Collection | None = None
    """Counter (the default) or post; a post request is checked by a rule."""

    def applicant_record(self) -> Applicant:
        """The applicant as the event model carries it (call only once the rules passed)."""
        return Applicant.model_validate(self.applicant.model_dump())

    def biometrics_record(self) -> Biometrics:
        """The biometric references as the event model carries them (after the rules passed)."""
        return Biometrics.model_validate(self.biometrics.model_dump())
