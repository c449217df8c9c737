"""Every message type has an SMS and an email template in every language, and each renders
with exactly the fields the composer provides (StrictUndefined: a missing field fails)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from importlib import resources

import jinja2
import pytest
from notify_samples import accepted, message_events

from permits_notify.adapters.templates import TemplateRenderer, template_name
from permits_notify.domain.composing import compose, compose_expiry_reminder
from permits_notify.domain.messages import CHANNELS, LANGUAGES, Language, Message, MessageType
from permits_notify.service.notifier import point_details, recipient_from

RENDERER = TemplateRenderer()


def messages_in(language: Language) -> list[Message]:
    """One message of every type, composed from sample events as the service composes them."""
    recipient = recipient_from(accepted("A-T1", language=language))
    posted = replace(recipient, posted=True)
    events = message_events("A-T1", "810000199001010012")
    composed = [compose(event, recipient, point_details("LIXIA")) for event in events]
    composed += [
        compose(event, posted, point_details("LIXIA"))
        for event in events
        if event.type == "permits.application.ready"
    ]
    reminder = compose_expiry_reminder(
        cause_id="r-1",
        recipient=recipient,
        card_number="810000199001010012",
        valid_until=date(2031, 11, 20),
        today=date(2031, 8, 22),
    )
    return [message for message in composed if message is not None] + [reminder]


def test_every_type_channel_and_language_has_a_template_file() -> None:
    root = resources.files("permits_notify") / "templates"
    missing = [
        template_name(language, message_type, channel)
        for language in LANGUAGES
        for message_type in MessageType
        for channel in CHANNELS
        if not (root / template_name(language, message_type, channel)).is_file()
    ]
    assert missing == []


def test_samples_cover_every_message_type() -> None:
    assert {message.type for message in messages_in("en")} == set(MessageType)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_every_template_renders_without_missing_fields(language: Language, channel: str) -> None:
    for message in messages_in(language):
        rendered = RENDERER.render(language, message.type, channel, message.context)  # type: ignore[arg-type]
        assert rendered.body
        assert "{{" not in rendered.body
        if channel == "email":
            assert rendered.subject
            assert "\n" not in rendered.subject
        else:
            assert rendered.subject is None
            assert len(rendered.body) <= 300


def test_a_missing_field_is_an_error_not_a_hole() -> None:
    context = {"name": "陳大文", "application_id": "A-1"}
    with pytest.raises(jinja2.UndefinedError):
        RENDERER.render("zh-Hant", MessageType.APPLICATION_ACCEPTED, "sms", context)


def test_messages_speak_the_applicants_language() -> None:
    by_language = {}
    for language in LANGUAGES:
        ready = next(m for m in messages_in(language) if m.type is MessageType.APPLICATION_READY)
        by_language[language] = RENDERER.render(language, ready.type, "sms", ready.context).body
    assert "領取" in by_language["zh-Hant"]
    assert "领取" in by_language["zh-Hans"]
    assert "ready" in by_language["en"]
    assert "CHAN TAI MAN" in by_language["en"]
    assert "0531-82922110" in by_language["en"]


def test_rejection_names_the_reason_and_breach_without_date_says_asap() -> None:
    messages = messages_in("en")
    rejected = next(m for m in messages if m.type is MessageType.APPLICATION_REJECTED)
    body = RENDERER.render("en", rejected.type, "email", rejected.context).body
    assert "six months" in body
    missed = [m for m in messages if m.type is MessageType.DEADLINE_MISSED]
    texts = [RENDERER.render("en", m.type, "sms", m.context).body for m in missed]
    assert any("4 December 2026" in text for text in texts)
    assert any("as soon as possible" in text for text in texts)
