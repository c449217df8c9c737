"""Pure rules: masking, language, channel choice and fallback, quiet hours, limits, reminders."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from permits_notify.domain.masking import contact_key, mask_email, mask_phone
from permits_notify.domain.messages import MessageType, Recipient, delivery_id, resolve_language
from permits_notify.domain.reasons import REASONS, reason_sentence
from permits_notify.domain.routing import FallBack, GiveUp, RetryLater, after_failure
from permits_notify.domain.scheduling import (
    SHANGHAI,
    QuietHours,
    RateLimit,
    RetryPolicy,
    quiet_hours_release,
    reminder_due_at,
    reminder_still_relevant,
)

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Jinan


def shanghai(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def recipient(phone: str | None = "+85291234567", email: str | None = "c@x.hk") -> Recipient:
    return Recipient("A-1", "陳大文", "zh-Hant", "LIXIA", phone=phone, email=email)


def test_phone_masking_keeps_country_code_and_last_four() -> None:
    assert mask_phone("+85291234567") == "+852****4567"
    assert mask_phone("+853 6612 3456") == "+853****3456"
    assert mask_phone("+886912345678") == "+886****5678"
    assert mask_phone("+8613812345678") == "+86****5678"
    assert mask_phone("91234567") == "****4567"
    assert mask_phone("123") == "****"


def test_email_masking_keeps_first_letter_and_domain() -> None:
    assert mask_email("chan@example.com") == "c***@example.com"
    assert mask_email("not-an-address") == "***"


def test_contact_key_is_stable_and_reveals_nothing() -> None:
    assert contact_key("+852 9123 4567") == contact_key("+85291234567")
    assert "4567" not in contact_key("+85291234567")


def test_language_defaults_to_traditional_chinese() -> None:
    assert resolve_language(None) == "zh-Hant"
    assert resolve_language("fr") == "zh-Hant"
    assert resolve_language("EN") == "en"
    assert resolve_language("zh-Hans") == "zh-Hans"


def test_primary_channel_is_sms_when_a_phone_is_known() -> None:
    assert recipient().primary_channel == "sms"
    assert recipient(phone=None).primary_channel == "email"
    assert recipient(phone=None, email=None).primary_channel is None


def test_fallback_goes_to_the_other_known_channel() -> None:
    assert recipient().fallback_channel("sms") == "email"
    assert recipient().fallback_channel("email") == "sms"
    assert recipient(email=None).fallback_channel("sms") is None


def test_temporary_failure_retries_with_backoff_then_falls_back() -> None:
    retry = RetryPolicy(max_attempts=3, base=timedelta(seconds=2))
    first = after_failure(permanent=False, attempts=1, now=NOW, retry=retry, fallback="email")
    second = after_failure(permanent=False, attempts=2, now=NOW, retry=retry, fallback="email")
    assert first == RetryLater(NOW + timedelta(seconds=2))
    assert second == RetryLater(NOW + timedelta(seconds=4))
    exhausted = after_failure(permanent=False, attempts=3, now=NOW, retry=retry, fallback="email")
    assert exhausted == FallBack("email")


def test_permanent_failure_falls_back_at_once_or_gives_up() -> None:
    retry = RetryPolicy()
    assert after_failure(
        permanent=True, attempts=1, now=NOW, retry=retry, fallback="email"
    ) == FallBack("email")
    assert isinstance(
        after_failure(permanent=True, attempts=1, now=NOW, retry=retry, fallback=None), GiveUp
    )


def test_backoff_is_capped() -> None:
    retry = RetryPolicy(max_attempts=50, base=timedelta(seconds=2), cap=timedelta(minutes=10))
    assert retry.next_attempt(40, NOW) == NOW + timedelta(minutes=10)


def test_quiet_hours_cross_midnight_in_jinan() -> None:
    quiet = QuietHours()
    assert quiet.contains(shanghai(22, 0))
    assert quiet.contains(shanghai(3, 30))
    assert quiet.contains(shanghai(7, 59))
    assert not quiet.contains(shanghai(8, 0))
    assert not quiet.contains(shanghai(21, 59))
    assert quiet.next_end(shanghai(23, 0)) == shanghai(8, 0, day=21)
    assert quiet.next_end(shanghai(2, 0)) == shanghai(8, 0)


def test_reminders_and_delay_sms_wait_for_morning_receipts_do_not() -> None:
    quiet = QuietHours()
    night = shanghai(23, 30)
    assert quiet_hours_release(MessageType.CARD_EXPIRING, "sms", night, quiet) == shanghai(
        8, 0, day=21
    )
    assert quiet_hours_release(MessageType.DEADLINE_AT_RISK, "sms", night, quiet) is not None
    assert quiet_hours_release(MessageType.APPLICATION_ACCEPTED, "sms", night, quiet) is None
    assert quiet_hours_release(MessageType.CARD_REPORTED_LOST, "sms", night, quiet) is None
    assert quiet_hours_release(MessageType.CARD_EXPIRING, "email", night, quiet) is None
    assert quiet_hours_release(MessageType.CARD_EXPIRING, "sms", shanghai(12), quiet) is None


def test_quiet_hours_are_configurable() -> None:
    quiet = QuietHours(start=time(21, 0), end=time(9, 0))
    assert quiet.contains(shanghai(8, 30))
    assert not QuietHours(start=time(0, 0), end=time(0, 0)).contains(shanghai(3))


def test_rate_limit_defers_the_excess_instead_of_dropping_it() -> None:
    limit = RateLimit(limit=2, window=timedelta(hours=1))
    sent = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)]
    assert limit.release(sent[:1], NOW) is None
    assert limit.release(sent, NOW) == NOW + timedelta(minutes=10)
    assert limit.release([NOW - timedelta(hours=2), *sent[1:]], NOW) is None


def test_reminders_are_due_90_and_30_days_before_expiry() -> None:
    due = reminder_due_at(date(2031, 11, 20), 90)
    assert due.astimezone(SHANGHAI).date() == date(2031, 8, 22)
    assert due.astimezone(SHANGHAI).hour == 10


def test_a_later_reminder_replaces_an_earlier_one_when_both_are_due() -> None:
    valid_until = date(2031, 11, 20)
    assert reminder_still_relevant(valid_until, 90, date(2031, 8, 22))
    assert not reminder_still_relevant(valid_until, 90, date(2031, 10, 25))
    assert reminder_still_relevant(valid_until, 30, date(2031, 10, 25))
    assert not reminder_still_relevant(valid_until, 30, date(2031, 11, 21))


def test_rejection_reasons_cover_every_language_and_unknown_codes() -> None:
    for sentences in REASONS.values():
        assert set(sentences) == {"zh-Hant", "zh-Hans", "en"}
    assert "six months" in reason_sentence("residence_too_short", "en")
    assert "x_new_rule" in reason_sentence("x_new_rule", "zh-Hans")


def test_delivery_key_is_cause_and_channel() -> None:
    assert delivery_id("ev-1", "sms") != delivery_id("ev-1", "email")
    assert delivery_id("ev-1", "sms") == delivery_id("ev-1", "sms")
