"""Which message an event means for the applicant, and the words its template needs.

Pure: the caller looks up the recipient and the acceptance point and passes them in. Every
value handed to a template is a finished string in the recipient's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from permits_common.domain.card import CollectionMethod
from permits_common.events.envelope import Event
from permits_common.events.models import (
    ApplicationAccepted,
    ApplicationCollected,
    ApplicationDispatched,
    ApplicationReady,
    ApplicationRejected,
    CardReportedLost,
    CardRevoked,
    EventData,
    SlaAtRisk,
    SlaBreached,
    SlaExtended,
    SlaRescheduled,
)
from permits_notify.domain.messages import Language, Message, MessageType, Recipient
from permits_notify.domain.reasons import reason_sentence
from permits_notify.domain.scheduling import SHANGHAI

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class PointDetails:
    """What an applicant needs to find an acceptance point."""

    name: str
    address: str
    phone: str


UNKNOWN_POINT = PointDetails(name="-", address="-", phone="-")


def format_date(day: date, language: Language) -> str:
    """A date as people write it: 2026年12月3日, or 3 December 2026."""
    if language == "en":
        return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def greeting_name(name: str, name_latin: str | None, language: Language) -> str:
    """The Chinese name, or for English readers the romanised one when there is one."""
    if language == "en" and name_latin:
        return name_latin
    return name


def card_tail(card_number: str) -> str:
    """The last four characters: enough for the holder to know which card is meant."""
    return card_number[-4:]


def _local_date(instant: datetime) -> date:
    return instant.astimezone(SHANGHAI).date()


def compose(event: Event[Any], recipient: Recipient, point: PointDetails) -> Message | None:
    """The message an application, deadline or card event means, or None if it means none."""
    data = event.data
    language = recipient.language
    base: dict[str, Any] = {"name": recipient.name, "application_id": recipient.application_id}
    message_type: MessageType
    extra: dict[str, Any]
    if isinstance(data, ApplicationAccepted):
        message_type = MessageType.APPLICATION_ACCEPTED
        extra = {"due_date": format_date(data.due_date, language), "point_name": point.name}
    elif isinstance(data, ApplicationRejected):
        message_type = MessageType.APPLICATION_REJECTED
        extra = {"reason": reason_sentence(data.code, language)}
    elif isinstance(data, ApplicationReady) and recipient.posted:
        message_type = MessageType.APPLICATION_READY_FOR_POST
        extra = {"point_phone": point.phone}
    elif isinstance(data, ApplicationReady):
        message_type = MessageType.APPLICATION_READY
        extra = {
            "point_name": point.name,
            "point_address": point.address,
            "point_phone": point.phone,
        }
    elif isinstance(data, ApplicationCollected):
        message_type = (
            MessageType.APPLICATION_DELIVERED
            if data.method is CollectionMethod.POST
            else MessageType.APPLICATION_COLLECTED
        )
        extra = {"collected_on": format_date(data.collected_on, language)}
    elif isinstance(data, (ApplicationDispatched, SlaExtended, SlaRescheduled)):
        composed = _posting_or_new_date(data, language, point)
        if composed is None:
            return None
        message_type, extra = composed
    elif isinstance(data, SlaAtRisk):
        message_type = MessageType.DEADLINE_AT_RISK
        extra = {
            "expected_date": format_date(data.due_date, language),
            "point_phone": point.phone,
        }
    elif isinstance(data, SlaBreached):
        message_type = MessageType.DEADLINE_MISSED
        expected = format_date(data.expected_date, language) if data.expected_date else None
        extra = {"expected_date": expected, "point_phone": point.phone}
    elif isinstance(data, CardReportedLost):
        message_type = MessageType.CARD_REPORTED_LOST
        extra = {
            "card_tail": card_tail(data.card_number),
            "reported_on": format_date(_local_date(data.reported_at), language),
        }
    elif isinstance(data, CardRevoked):
        message_type = MessageType.CARD_REVOKED
        extra = {"card_tail": card_tail(data.card_number), "reason": data.reason}
    else:
        return None
    return Message(
        cause_event_id=event.id,
        application_id=recipient.application_id,
        type=message_type,
        context={**base, **extra},
    )


def _posting_or_new_date(
    data: EventData, language: Language, point: PointDetails
) -> tuple[MessageType, dict[str, Any]] | None:
    """A posted card's tracking number, or a due date that moved (an extension, or the
    official holiday arrangement); a recomputation that left the date alone means nothing."""
    if isinstance(data, ApplicationDispatched):
        return MessageType.APPLICATION_DISPATCHED, {
            "carrier": data.carrier,
            "tracking_number": data.tracking_number,
            "dispatched_on": format_date(data.dispatched_on, language),
        }
    if isinstance(data, SlaExtended):
        return MessageType.DEADLINE_EXTENDED, {
            "working_days": str(data.working_days),
            "old_due_date": format_date(data.old_due_date, language),
            "new_due_date": format_date(data.new_due_date, language),
            "reason": data.reason,
            "point_phone": point.phone,
        }
    if isinstance(data, SlaRescheduled):
        old = data.old_due_date or data.previous_due_date
        if old == data.due_date:
            return None
        return MessageType.DEADLINE_RESCHEDULED, {
            "old_due_date": format_date(old, language),
            "new_due_date": format_date(data.due_date, language),
            "point_phone": point.phone,
        }
    return None


def compose_expiry_reminder(
    *,
    cause_id: str,
    recipient: Recipient,
    card_number: str,
    valid_until: date,
    today: date,
) -> Message:
    """The renewal reminder for a card that expires soon."""
    language = recipient.language
    return Message(
        cause_event_id=cause_id,
        application_id=recipient.application_id,
        type=MessageType.CARD_EXPIRING,
        context={
            "name": recipient.name,
            "application_id": recipient.application_id,
            "card_tail": card_tail(card_number),
            "valid_until": format_date(valid_until, language),
            "days_left": str(max((valid_until - today).days, 0)),
        },
    )
