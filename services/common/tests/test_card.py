"""Card validity and application state ordering."""

from datetime import date

from permits_common.domain.card import ApplicationStatus, status_advances, valid_until


def test_validity_is_five_years_same_day() -> None:
    assert valid_until(date(2026, 11, 27)) == date(2031, 11, 27)


def test_29_february_becomes_28_february() -> None:
    assert valid_until(date(2028, 2, 29)) == date(2033, 2, 28)


def test_late_events_never_move_an_application_back() -> None:
    assert status_advances(ApplicationStatus.ACCEPTED, ApplicationStatus.READY)
    assert not status_advances(ApplicationStatus.READY, ApplicationStatus.APPROVED)
    assert not status_advances(ApplicationStatus.COLLECTED, ApplicationStatus.READY)
    assert not status_advances(ApplicationStatus.REJECTED, ApplicationStatus.APPROVED)
    assert ApplicationStatus.READY.is_open
    assert not ApplicationStatus.COLLECTED.is_open
