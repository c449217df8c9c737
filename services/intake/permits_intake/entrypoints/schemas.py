"""Request and response bodies of the intake API, as published in its OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from permits_common.domain.card import (
    ApplicationKind,
    ApplicationStatus,
    CollectionMethod,
    HolderStatus,
    SlaState,
)
from permits_common.domain.extension import MAX_EXTENSION_WORKING_DAYS
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.models import Collection
from permits_common.web.inputs import WholeNumber
from permits_common.web.problems import ProblemError

APPLICATION_ID_EXAMPLE = "0b7f6a57-4f55-4b8e-9a0e-3f1f7e6a9c21"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AcceptancePointOut(_Out):
    """One of the sixteen acceptance points (受理点) and the branch that signs its cards."""

    code: str = Field(examples=["LIXIA"])
    name: str = Field(examples=["历下分局科院路派出所"])
    district: str = Field(examples=["历下区"])
    address: str = Field(examples=["历下区科院路6号"])
    phone: str = Field(examples=["0531-82922110"])
    issuing_authority: str = Field(examples=["济南市公安局历下分局"])


class AcceptedOut(_Out):
    """The answer to an accepted application."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": APPLICATION_ID_EXAMPLE,
                    "status": "accepted",
                    "accepted_on": "2026-03-02",
                    "due_date": "2026-03-30",
                    "due_date_provisional": False,
                }
            ]
        },
    )

    id: str
    status: ApplicationStatus
    accepted_on: date
    due_date: date
    due_date_provisional: bool


class CardOut(_Out):
    """The card an application produced; validity is known once the card is issued."""

    number: str
    issue_count: int
    valid_from: date | None
    valid_until: date | None
    issuing_authority: str | None


class RejectionOut(_Out):
    """Why issuance rejected the application."""

    code: str
    message: str


class HistoryOut(_Out):
    """One status the application reached, and when."""

    status: ApplicationStatus
    at: datetime


class ApplicationOut(_Out):
    """The clerk's and operator's view of an application."""

    id: str
    kind: ApplicationKind
    acceptance_point: str | None = None
    status: ApplicationStatus
    accepted_on: date
    due_date: date
    due_date_provisional: bool
    sla: SlaState
    card: CardOut | None
    rejection: RejectionOut | None
    history: list[HistoryOut]
    collection: Collection = Collection()
    extension: ExtensionOut | None = None
    calendar: CalendarBehindOut | None = None
    dispatch: DispatchOut | None = None


class ExtensionOut(_Out):
    """The extension (延长) granted so far: working days in total, the latest reason and when."""

    working_days: int
    reason: str
    granted_at: datetime


class CalendarBehindOut(_Out):
    """The calendar the current due date was computed with."""

    version: str
    provisional: bool
    official_years: list[int]
    provisional_years: list[int]


class DispatchOut(_Out):
    """A posted card: the carrier and its tracking number."""

    carrier: str
    tracking_number: str
    dispatched_on: date


class ExtensionIn(BaseModel):
    """An operator extends the issuing time (at most 10 working days in total)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"working_days": 5, "reason": "交通不便: road closed"}]},
    )

    working_days: WholeNumber = Field(
        ge=1,
        # Stated in the document, decided by the rule: more than 10 in total (this request's
        # days included) is 422 `extension_too_long` (contract), not a schema error.
        json_schema_extra={"maximum": MAX_EXTENSION_WORKING_DAYS},
    )
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class DispatchIn(BaseModel):
    """A clerk hands a posted card to the carrier."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"carrier": "EMS", "tracking_number": "EA123456789CN"}]},
    )

    carrier: Annotated[str, Field(min_length=1, max_length=50)]
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]


class CollectionPlaceOut(_Out):
    """Where the card is collected: the acceptance point that took the application."""

    name: str
    address: str
    phone: str


class ApplicantStatusOut(_Out):
    """What the applicant may see: progress and where to go, no personal data."""

    id: str
    status: ApplicationStatus
    due_date: date
    sla: SlaState
    collect_at: CollectionPlaceOut
    collection_method: CollectionMethod = CollectionMethod.COUNTER
    tracking: TrackingOut | None = None


class TrackingOut(_Out):
    """Where a posted card is: the carrier and the tracking number, nothing about the address."""

    carrier: str
    tracking_number: str


class CardStatusOut(_Out):
    """A card issue's holder status after a report or revocation."""

    card_number: str
    issue_count: int
    status: HolderStatus


class RevokeIn(BaseModel):
    """Why the card is revoked (注销): the holder no longer qualifies, or fraud."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"reason": "fraud"}]})

    reason: Annotated[str, Field(min_length=1, max_length=500)]


class DueDateOut(_Out):
    """The deadline for an application accepted on a given day."""

    due_date: date
    provisional: bool
    working_days: int


class CalendarIn(BaseModel):
    """A year's official arrangement: days off and make-up working days (调休)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "holidays": ["2027-01-01", "2027-02-06", "2027-02-07"],
                    "workdays": ["2027-02-14"],
                }
            ]
        },
    )

    holidays: Annotated[list[date], Field(max_length=366)]
    workdays: Annotated[list[date], Field(max_length=366)] = []


class CalendarOut(_Out):
    """The arrangement now in force for a year."""

    year: int
    holidays: list[date]
    workdays: list[date]
    official: bool


class ClockIn(BaseModel):
    """Development only: run the service clock this many days ahead (negative: behind)."""

    model_config = ConfigDict(extra="ignore")

    offset_days: WholeNumber = Field(ge=-3650, le=3650)


class ClockOut(_Out):
    """The development clock after moving it."""

    offset_days: int
    today: date


def invalid_arrangement(exc: ValueError) -> ProblemError:
    """A year's arrangement that cannot be loaded (nor previewed): 422 with the reason."""
    return ProblemError(
        422,
        RuleCode.INVALID_REQUEST.value,
        "Invalid arrangement",
        str(exc),
        errors=[{"field": "body", "code": "invalid_arrangement", "message": str(exc)}],
    )
