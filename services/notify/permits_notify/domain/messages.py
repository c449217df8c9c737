"""What the applicant is told, in which language, and where it is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")
Language = Literal["zh-Hant", "zh-Hans", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-Hant", "zh-Hans", "en")
DEFAULT_LANGUAGE: Language = "zh-Hant"


class MessageType(StrEnum):
    """One template per type and language; the value is the template file's stem."""

    APPLICATION_ACCEPTED = "application_accepted"
    APPLICATION_REJECTED = "application_rejected"
    APPLICATION_READY = "application_ready"
    APPLICATION_READY_FOR_POST = "application_ready_for_post"
    APPLICATION_DISPATCHED = "application_dispatched"
    APPLICATION_COLLECTED = "application_collected"
    APPLICATION_DELIVERED = "application_delivered"
    DEADLINE_AT_RISK = "deadline_at_risk"
    DEADLINE_MISSED = "deadline_missed"
    DEADLINE_EXTENDED = "deadline_extended"
    DEADLINE_RESCHEDULED = "deadline_rescheduled"
    CARD_EXPIRING = "card_expiring"
    CARD_REPORTED_LOST = "card_reported_lost"
    CARD_REVOKED = "card_revoked"


DEFERRABLE_TYPES: frozenset[MessageType] = frozenset(
    {
        MessageType.CARD_EXPIRING,
        MessageType.DEADLINE_AT_RISK,
        MessageType.DEADLINE_MISSED,
        MessageType.DEADLINE_RESCHEDULED,
    }
)
"""Not urgent: their SMS wait for the end of quiet hours. Receipts, rejections, collection
notices and card security messages (lost, revoked) answer something that just happened and go
at once."""


def resolve_language(requested: str | None) -> Language:
    """The applicant's language, Traditional Chinese when unknown (HK, MO and TW use it)."""
    for language in LANGUAGES:
        if requested is not None and requested.lower() == language.lower():
            return language
    return DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Recipient:
    """How to reach one applicant, kept per application id."""

    application_id: str
    name: str
    language: Language
    acceptance_point: str
    phone: str | None = None
    email: str | None = None
    posted: bool = False
    """The applicant asked for the card to be posted (邮寄领取), not collected at the point."""

    def contact(self, channel: Channel) -> str | None:
        """The address for a channel, if the applicant gave one."""
        return self.phone if channel == "sms" else self.email

    @property
    def primary_channel(self) -> Channel | None:
        """SMS when a phone is known, else email; None when there is no way to reach them."""
        if self.phone:
            return "sms"
        if self.email:
            return "email"
        return None

    def fallback_channel(self, failed: Channel) -> Channel | None:
        """The other channel, when the applicant can be reached there."""
        other: Channel = "email" if failed == "sms" else "sms"
        return other if self.contact(other) else None


@dataclass(frozen=True, slots=True)
class Message:
    """A message to send: the event that caused it, its type and what the template needs."""

    cause_event_id: str
    application_id: str
    type: MessageType
    context: dict[str, Any] = field(default_factory=dict)


def delivery_id(cause_event_id: str, channel: Channel) -> str:
    """The unique key of a delivery: one message per cause event and channel, ever."""
    return f"{cause_event_id}|{channel}"
