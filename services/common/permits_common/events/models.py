"""One model per event type of contract.md, plus the value objects they carry.

Models are the single definition of each event's `data`: producers build them, consumers
validate against them, and the JSON Schemas in docs/events/ are generated from them. New fields
are only ever added as optional, so old consumers keep working (unknown fields are ignored).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from permits_common.domain.card import (
    ApplicationKind,
    CollectionMethod,
    HolderStatus,
    RenewalReason,
)
from permits_common.domain.regions import Region, Sex
from permits_common.events import topics

Language = Literal["zh-Hant", "zh-Hans", "en"]
BasisType = Literal["employment", "residence", "study"]
FingerprintWaiver = Literal["under_6", "no_fingers", "unreadable"]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


class _Value(BaseModel):
    """Immutable value object; ignores fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Applicant(_Value):
    """The person applying, as identified at the acceptance point."""

    name: NonEmpty
    name_latin: Annotated[str, Field(max_length=200)] | None = None
    sex: Sex
    birth_date: date
    region: Region
    travel_permit_number: Annotated[str, Field(min_length=8, max_length=11)]
    phone: Annotated[str, Field(max_length=32)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    language: Language = "zh-Hant"


class Guardian(_Value):
    """Required for an applicant under 16 (监护人)."""

    name: NonEmpty
    relationship: NonEmpty
    id_document: NonEmpty


class Residence(_Value):
    """Where in Jinan the applicant lives, and since when."""

    address: NonEmpty
    district: NonEmpty
    since: date


class Basis(_Value):
    """One ground of eligibility with its evidence reference."""

    type: BasisType
    evidence: Annotated[str, Field(max_length=200)] = ""


class Biometrics(_Value):
    """References to photo and fingerprints captured on site; raw biometrics never travel."""

    photo_ref: Annotated[str, Field(max_length=200)] | None = None
    fingerprints_ref: Annotated[str, Field(max_length=200)] | None = None
    fingerprint_waiver: FingerprintWaiver | None = None


class Collection(_Value):
    """How the applicant receives the card (领证方式): at the acceptance point, or posted to the
    address given here (邮寄领取, postage paid by the recipient on delivery)."""

    method: CollectionMethod = CollectionMethod.COUNTER
    recipient: Annotated[str, Field(max_length=200)] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    postcode: Annotated[str, Field(max_length=12)] | None = None


class EventData(_Value):
    """Base of every event's data: knows its CloudEvents type, topic and subject field."""

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    SUBJECT: ClassVar[str]

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents `type`, with the `permits.` prefix."""
        return f"permits.{cls.TYPE}"

    @classmethod
    def topic(cls) -> str:
        """The Kafka topic this event type is published to."""
        return cls.TOPIC

    def subject(self) -> str:
        """The CloudEvents subject and Kafka key: the application id, card number or year."""
        return str(getattr(self, self.SUBJECT))


class _ApplicationEvent(EventData):
    TOPIC: ClassVar[str] = topics.APPLICATIONS
    SUBJECT: ClassVar[str] = "application_id"

    application_id: str
    acceptance_point: str


class ApplicationAccepted(_ApplicationEvent):
    """A clerk accepted an application; the deadline clock starts the day after `accepted_on`."""

    TYPE: ClassVar[str] = "application.accepted"

    kind: ApplicationKind
    card_number: str | None = None
    renewal_reason: RenewalReason | None = None
    accepted_on: date
    due_date: date
    due_date_provisional: bool
    applicant: Applicant
    guardian: Guardian | None = None
    residence: Residence
    bases: list[Basis]
    biometrics: Biometrics
    collection: Collection | None = None
    """None (from producers before collection by post existed) means at the counter."""


class ApplicationRejected(_ApplicationEvent):
    """The application failed a rule; `code` is a stable rule code of domain.md."""

    TYPE: ClassVar[str] = "application.rejected"

    code: str
    message: str
    field: str | None = None


class ApplicationApproved(_ApplicationEvent):
    """Issuance checked the register and assigned the card number and issue count."""

    TYPE: ClassVar[str] = "application.approved"

    kind: ApplicationKind
    card_number: str
    issue_count: int = Field(ge=1)


class ApplicationInProduction(_ApplicationEvent):
    """The card production centre accepted the request to make the card."""

    TYPE: ClassVar[str] = "application.in_production"

    card_number: str
    issue_count: int = Field(ge=1)
    production_request_id: str


class ApplicationReady(_ApplicationEvent):
    """The card is made and waits at the acceptance point for collection (发放)."""

    TYPE: ClassVar[str] = "application.ready"

    card_number: str
    issue_count: int = Field(ge=1)
    ready_on: date


class ApplicationDispatched(_ApplicationEvent):
    """A card to be posted was handed to the carrier (邮寄领取); it is `ready` no longer."""

    TYPE: ClassVar[str] = "application.dispatched"

    card_number: str
    carrier: str
    tracking_number: str
    dispatched_on: date


class ApplicationCollected(_ApplicationEvent):
    """The applicant collected the card at the acceptance point, or its delivery by post was
    confirmed (`method` = `post`)."""

    TYPE: ClassVar[str] = "application.collected"

    card_number: str
    collected_on: date
    method: CollectionMethod = CollectionMethod.COUNTER


class ApplicationExtensionGranted(_ApplicationEvent):
    """An operator extended the issuing time (延长); issuance moves the due date and answers
    with `sla.extended`."""

    TYPE: ClassVar[str] = "application.extension_granted"

    working_days: int = Field(ge=1, le=10)
    total_working_days: int = Field(ge=1, le=10)
    reason: str
    granted_at: AwareDatetime


class _CardEvent(EventData):
    TOPIC: ClassVar[str] = topics.CARDS
    SUBJECT: ClassVar[str] = "card_number"

    card_number: str
    issue_count: int = Field(ge=1)


class CardIssued(_CardEvent):
    """A card issue exists: everything printed on it plus the references behind it."""

    TYPE: ClassVar[str] = "card.issued"

    application_id: str
    kind: ApplicationKind
    name: str
    name_latin: str | None = None
    sex: Sex
    birth_date: date
    region: Region
    address: str
    district: str
    travel_permit_number: str
    photo_ref: str | None = None
    fingerprints_ref: str | None = None
    valid_from: date
    valid_until: date
    issuing_authority: str
    acceptance_point: str


class CardReportedLost(_CardEvent):
    """The holder reported the card lost: it is invalid from this moment."""

    TYPE: ClassVar[str] = "card.reported_lost"

    reported_at: AwareDatetime
    acceptance_point: str | None = None


class CardSuperseded(_CardEvent):
    """A renewal or reissue replaced this issue; verifying it must now fail."""

    TYPE: ClassVar[str] = "card.superseded"

    superseded_by_issue_count: int = Field(ge=2)
    application_id: str


class CardRevoked(_CardEvent):
    """Revocation (注销): the holder no longer qualifies, or the card was obtained by fraud."""

    TYPE: ClassVar[str] = "card.revoked"

    reason: str
    revoked_at: AwareDatetime


class CardExpired(_CardEvent):
    """The card passed the end of its `valid_until` day."""

    TYPE: ClassVar[str] = "card.expired"

    valid_until: date


class _SlaEvent(EventData):
    TOPIC: ClassVar[str] = topics.SLA
    SUBJECT: ClassVar[str] = "application_id"

    application_id: str
    acceptance_point: str
    due_date: date


class _CalendarBehind(_SlaEvent):
    """The calendar the due date was computed with: its version, which years were official
    and which provisional (optional: producers before the calendar was recorded omit them)."""

    calendar_version: str | None = None
    official_years: list[int] = Field(default_factory=list)
    provisional_years: list[int] = Field(default_factory=list)


class SlaScheduled(_CalendarBehind):
    """The deadline of a newly accepted application."""

    TYPE: ClassVar[str] = "sla.scheduled"

    accepted_on: date
    provisional: bool
    working_days: int = 20


class SlaRescheduled(_CalendarBehind):
    """An open deadline was recomputed because a year it depends on was loaded or corrected;
    `due_date` is the new date (also `new_due_date`), `old_due_date` the one it replaces."""

    TYPE: ClassVar[str] = "sla.rescheduled"

    accepted_on: date
    previous_due_date: date
    provisional: bool
    old_due_date: date | None = None
    new_due_date: date | None = None


class SlaExtended(_CalendarBehind):
    """An operator's extension moved the due date by `working_days` working days (at most 10 in
    total, `total_working_days`); `due_date` is the new date (also `new_due_date`)."""

    TYPE: ClassVar[str] = "sla.extended"

    accepted_on: date
    old_due_date: date
    new_due_date: date
    working_days: int = Field(ge=1, le=10)
    total_working_days: int = Field(ge=1, le=10)
    reason: str
    provisional: bool


class SlaAtRisk(_SlaEvent):
    """Few working days are left and the card is not ready yet."""

    TYPE: ClassVar[str] = "sla.at_risk"

    working_days_left: int


class SlaBreached(_SlaEvent):
    """The due date passed without the card being ready."""

    TYPE: ClassVar[str] = "sla.breached"

    expected_date: date | None = None


class SlaMet(_SlaEvent):
    """The card was ready on or before the due date."""

    TYPE: ClassVar[str] = "sla.met"

    ready_on: date
    working_days_taken: int


class _NotificationEvent(EventData):
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS
    SUBJECT: ClassVar[str] = "application_id"

    application_id: str
    message_type: str
    channel: Literal["sms", "email"]
    recipient: str = Field(description="Masked, e.g. +852****4567 or c***@example.com")
    template: str
    language: Language
    attempts: int = Field(ge=1)
    cause_event_id: str


class NotificationSent(_NotificationEvent):
    """A message was handed to the SMS gateway or the mail server."""

    TYPE: ClassVar[str] = "notification.sent"


class NotificationFailed(_NotificationEvent):
    """A message could not be delivered on any channel."""

    TYPE: ClassVar[str] = "notification.failed"

    error: str


class CalendarLoaded(EventData):
    """An operator loaded a year's official holiday arrangement."""

    TYPE: ClassVar[str] = "calendar.loaded"
    TOPIC: ClassVar[str] = topics.CALENDAR
    SUBJECT: ClassVar[str] = "year"

    year: int = Field(ge=2000, le=2100)
    holidays: list[date]
    workdays: list[date]


class HolderStatusChanged(EventData):
    """What one agency sees of a card issue: every field except `card_number`, `issue_count`
    and `status` is present only when that agency's policy allows it."""

    TYPE: ClassVar[str] = "holder.status"
    TOPIC: ClassVar[str] = "permits.rights.{agency}.v1"
    SUBJECT: ClassVar[str] = "card_number"

    agency: str
    card_number: str
    issue_count: int = Field(ge=1)
    status: HolderStatus
    changed_at: AwareDatetime
    name: str | None = None
    name_latin: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    region: Region | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    issuing_authority: str | None = None
    district: str | None = None
    address: str | None = None

    def topic(self) -> str:  # type: ignore[override]
        """Each agency's own feed topic."""
        return topics.rights_topic(self.agency)


class DeadLetter(EventData):
    """A message some consumer could not process, kept with the reason for an operator."""

    TYPE: ClassVar[str] = "deadletter"
    TOPIC: ClassVar[str] = topics.DEADLETTER
    SUBJECT: ClassVar[str] = "original_key"

    original_topic: str
    original_partition: int | None = None
    original_offset: int | None = None
    original_key: str
    original_value: str = Field(description="The raw message, UTF-8 (invalid bytes replaced)")
    consumer: str
    error: str


class AuditActor(_Value):
    """Who acted: the token's identity (a fingerprint, never the token) and its role."""

    id: Annotated[str, Field(max_length=64)]
    role: Annotated[str, Field(max_length=64)]


class AuditAccess(EventData):
    """One entry of the audit trail: a read or change of personal data, or a verification
    answer. `subject_id` is the application id or card number (also the event's subject);
    `point` or `agency` says from where; `purpose` why (the endpoint's duty); `outcome` what
    the caller got."""

    TYPE: ClassVar[str] = "audit.access"
    TOPIC: ClassVar[str] = topics.AUDIT
    SUBJECT: ClassVar[str] = "subject_id"

    at: AwareDatetime
    actor: AuditActor
    service: Annotated[str, Field(max_length=32)]
    action: Annotated[str, Field(max_length=64)]
    subject_id: Annotated[str, Field(min_length=1, max_length=64)]
    outcome: Annotated[str, Field(max_length=64)]
    point: Annotated[str, Field(max_length=32)] | None = None
    agency: Annotated[str, Field(max_length=32)] | None = None
    purpose: Annotated[str, Field(max_length=200)] | None = None


EVENT_MODELS: dict[str, type[EventData]] = {
    model.event_type(): model
    for model in (
        ApplicationAccepted,
        ApplicationRejected,
        ApplicationApproved,
        ApplicationInProduction,
        ApplicationReady,
        ApplicationDispatched,
        ApplicationCollected,
        ApplicationExtensionGranted,
        CardIssued,
        CardReportedLost,
        CardSuperseded,
        CardRevoked,
        CardExpired,
        SlaScheduled,
        SlaRescheduled,
        SlaExtended,
        SlaAtRisk,
        SlaBreached,
        SlaMet,
        NotificationSent,
        NotificationFailed,
        CalendarLoaded,
        HolderStatusChanged,
        DeadLetter,
        AuditAccess,
    )
}
