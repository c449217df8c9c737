"""What the applicant is told about an extension, a due date moved by the official holiday
arrangement, and a card sent by post (ready, dispatched with its tracking number, delivered)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

from notify_samples import accepted, law_events

from permits_common.events.envelope import new_event
from permits_common.events.models import ApplicationReady, Collection, SlaRescheduled
from permits_notify.adapters.templates import TemplateRenderer
from permits_notify.domain.composing import compose
from permits_notify.domain.messages import MessageType
from permits_notify.service.notifier import point_details, recipient_from

RENDERER = TemplateRenderer()
POINT = point_details("LIXIA")


def sms(language: str, posted: bool = False) -> dict[MessageType, str]:
    """The SMS text of every law message, by type."""
    recipient = recipient_from(accepted("A-L1", language=language))
    recipient = replace(recipient, posted=posted)
    texts = {}
    for data in law_events("A-L1", "810000199001010012"):
        message = compose(new_event(data, source="t"), recipient, POINT)
        assert message is not None
        texts[message.type] = RENDERER.render(
            recipient.language, message.type, "sms", message.context
        ).body
    return texts


def test_an_extension_gives_both_dates_and_the_reason() -> None:
    text = sms("en")[MessageType.DEADLINE_EXTENDED]
    assert "10 working days" in text
    assert "14 December 2026" in text
    assert "30 November 2026" in text
    assert "交通不便" in text
    assert "延長10個工作日" in sms("zh-Hant")[MessageType.DEADLINE_EXTENDED]


def test_a_moved_date_is_told_and_an_unmoved_one_is_not() -> None:
    assert "14 January 2027" in sms("en")[MessageType.DEADLINE_RESCHEDULED]
    recipient = recipient_from(accepted("A-L2"))
    same = SlaRescheduled(
        application_id="A-L2",
        acceptance_point="LIXIA",
        due_date=date(2027, 1, 13),
        accepted_on=date(2026, 12, 15),
        previous_due_date=date(2027, 1, 13),
        old_due_date=date(2027, 1, 13),
        new_due_date=date(2027, 1, 13),
        provisional=False,
    )
    assert compose(new_event(same, source="t"), recipient, POINT) is None


def test_a_posted_card_is_announced_with_its_tracking_number_and_delivery() -> None:
    texts = sms("zh-Hans", posted=True)
    assert "EA123456789CN" in texts[MessageType.APPLICATION_DISPATCHED]
    assert "EMS" in texts[MessageType.APPLICATION_DISPATCHED]
    assert "送达" in texts[MessageType.APPLICATION_DELIVERED]


def test_a_card_to_be_posted_is_not_announced_as_waiting_at_the_counter() -> None:
    posted = accepted("A-L3").model_copy(
        update={"collection": Collection(method="post", recipient="陈大文", address="x")}
    )
    recipient = recipient_from(posted)
    assert recipient.posted
    ready = ApplicationReady(
        application_id="A-L3",
        acceptance_point="LIXIA",
        card_number="810000199001010012",
        issue_count=1,
        ready_on=date(2026, 11, 20),
    )
    message = compose(new_event(ready, source="t", event_id=str(uuid.uuid4())), recipient, POINT)
    assert message is not None
    assert message.type is MessageType.APPLICATION_READY_FOR_POST
    assert not recipient_from(accepted("A-L4")).posted
