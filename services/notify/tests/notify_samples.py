"""Sample events for the notify tests: one per event type that leads to a message."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from permits_common.events.envelope import Event, new_event
from permits_common.events.models import (
    Applicant,
    ApplicationAccepted,
    ApplicationCollected,
    ApplicationDispatched,
    ApplicationReady,
    ApplicationRejected,
    Basis,
    Biometrics,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    Residence,
    SlaAtRisk,
    SlaBreached,
    SlaExtended,
    SlaRescheduled,
)


def accepted(
    application_id: str,
    *,
    language: str = "zh-Hant",
    phone: str | None = "+85291234567",
    email: str | None = "chan@example.com",
    point: str = "LIXIA",
) -> ApplicationAccepted:
    """An accepted first application of a Hong Kong resident."""
    return ApplicationAccepted(
        application_id=application_id,
        acceptance_point=point,
        kind="first",
        accepted_on=date(2026, 11, 2),
        due_date=date(2026, 11, 30),
        due_date_provisional=False,
        applicant=Applicant(
            name="陳大文",
            name_latin="CHAN TAI MAN",
            sex="M",
            birth_date=date(1990, 1, 1),
            region="HK",
            travel_permit_number="H12345678",
            phone=phone,
            email=email,
            language=language,
        ),
        residence=Residence(address="历下区科院路6号", district="历下区", since=date(2025, 1, 10)),
        bases=[Basis(type="employment", evidence="labour contract 2025-0117")],
        biometrics=Biometrics(photo_ref="ph-001", fingerprints_ref="fp-001"),
    )


def card_issued(
    application_id: str, card_number: str, *, valid_until: date = date(2031, 11, 20)
) -> CardIssued:
    """The first issue of a card."""
    return CardIssued(
        card_number=card_number,
        issue_count=1,
        application_id=application_id,
        kind="first",
        name="陳大文",
        sex="M",
        birth_date=date(1990, 1, 1),
        region="HK",
        address="历下区科院路6号",
        district="历下区",
        travel_permit_number="H12345678",
        valid_from=date(2026, 11, 20),
        valid_until=valid_until,
        issuing_authority="济南市公安局历下分局",
        acceptance_point="LIXIA",
    )


def message_events(application_id: str, card_number: str) -> list[Event[Any]]:
    """One event of every type that means a message, wrapped as the producers send them."""
    now = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    data = [
        accepted(application_id),
        ApplicationRejected(
            application_id=application_id,
            acceptance_point="LIXIA",
            code="residence_too_short",
            message="residence since 2026-06-01 is shorter than six months",
        ),
        ApplicationReady(
            application_id=application_id,
            acceptance_point="LIXIA",
            card_number=card_number,
            issue_count=1,
            ready_on=date(2026, 11, 20),
        ),
        ApplicationCollected(
            application_id=application_id,
            acceptance_point="LIXIA",
            card_number=card_number,
            collected_on=date(2026, 11, 23),
        ),
        SlaAtRisk(
            application_id=application_id,
            acceptance_point="LIXIA",
            due_date=date(2026, 11, 30),
            working_days_left=5,
        ),
        SlaBreached(
            application_id=application_id,
            acceptance_point="LIXIA",
            due_date=date(2026, 11, 30),
            expected_date=date(2026, 12, 4),
        ),
        SlaBreached(
            application_id=application_id, acceptance_point="LIXIA", due_date=date(2026, 11, 30)
        ),
        CardReportedLost(card_number=card_number, issue_count=1, reported_at=now),
        CardRevoked(card_number=card_number, issue_count=1, reason="fraud", revoked_at=now),
        *law_events(application_id, card_number),
    ]
    return [new_event(item, source="test", event_id=str(uuid.uuid4())) for item in data]


def law_events(application_id: str, card_number: str) -> list[Any]:
    """An extension, a due date moved by the official holiday arrangement, and a posted card
    dispatched and delivered."""
    return [
        SlaExtended(
            application_id=application_id,
            acceptance_point="LIXIA",
            due_date=date(2026, 12, 14),
            accepted_on=date(2026, 11, 2),
            old_due_date=date(2026, 11, 30),
            new_due_date=date(2026, 12, 14),
            working_days=10,
            total_working_days=10,
            reason="交通不便",
            provisional=False,
        ),
        SlaRescheduled(
            application_id=application_id,
            acceptance_point="LIXIA",
            due_date=date(2027, 1, 14),
            accepted_on=date(2026, 12, 15),
            previous_due_date=date(2027, 1, 13),
            old_due_date=date(2027, 1, 13),
            new_due_date=date(2027, 1, 14),
            provisional=False,
            calendar_version="0123456789ab",
            official_years=[2026, 2027],
        ),
        ApplicationDispatched(
            application_id=application_id,
            acceptance_point="LIXIA",
            card_number=card_number,
            carrier="EMS",
            tracking_number="EA123456789CN",
            dispatched_on=date(2026, 11, 21),
        ),
        ApplicationCollected(
            application_id=application_id,
            acceptance_point="LIXIA",
            card_number=card_number,
            collected_on=date(2026, 11, 24),
            method="post",
        ),
    ]
