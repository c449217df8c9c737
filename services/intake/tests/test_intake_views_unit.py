"""Card view and status transitions, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime

from intake_forms import application_body

from permits_common.domain.card import ApplicationStatus, HolderStatus, SlaState, status_advances
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.models import (
    CardExpired,
    CardIssued,
    CardReportedLost,
    CardRevoked,
    CardSuperseded,
    SlaMet,
)
from permits_intake.domain.cards import CardView, apply_card_event, card_refusals
from permits_intake.domain.forms import ApplicationForm
from permits_intake.domain.progress import (
    CardStep,
    DueStep,
    ExtensionStep,
    SlaStep,
    StatusStep,
    Step,
    effective_sla,
    fold,
    sla_of,
    sla_states_before,
    steps_of,
)

NUMBER = "810000199001010011"
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)


def issued(issue_count: int = 1, permit: str = "H12345678") -> CardIssued:
    return CardIssued(
        card_number=NUMBER,
        issue_count=issue_count,
        application_id="app-1",
        kind="first",
        name="陈大文",
        sex="M",
        birth_date=date(1990, 1, 1),
        region="HK",
        address="历下区科院路6号",
        district="历下区",
        travel_permit_number=permit,
        valid_from=date(2026, 3, 20),
        valid_until=date(2031, 3, 20),
        issuing_authority="济南市公安局历下分局",
        acceptance_point="LIXIA",
    )


def test_issued_card_is_active_and_held_by_base_number() -> None:
    view = apply_card_event(None, issued(permit="H1234567803"))
    assert view is not None
    assert (view.status, view.holder, view.issue_count) == (HolderStatus.ACTIVE, "H12345678", 1)


def test_lost_then_reissued_then_old_superseded() -> None:
    view = apply_card_event(None, issued())
    assert view is not None
    lost = apply_card_event(
        view, CardReportedLost(card_number=NUMBER, issue_count=1, reported_at=NOW)
    )
    assert lost is not None
    assert lost.status is HolderStatus.REPORTED_LOST
    second = apply_card_event(lost, issued(2))
    assert second is not None
    assert second.status is HolderStatus.ACTIVE
    superseded = CardSuperseded(
        card_number=NUMBER, issue_count=1, superseded_by_issue_count=2, application_id="a"
    )
    assert apply_card_event(second, superseded) is None
    assert apply_card_event(second, issued(1)) is None


def test_revoked_is_final_and_lost_does_not_expire() -> None:
    view = apply_card_event(None, issued())
    assert view is not None
    revoked = apply_card_event(
        view, CardRevoked(card_number=NUMBER, issue_count=1, reason="fraud", revoked_at=NOW)
    )
    assert revoked is not None
    assert revoked.status is HolderStatus.REVOKED
    lost = CardReportedLost(card_number=NUMBER, issue_count=1, reported_at=NOW)
    assert apply_card_event(revoked, lost) is None
    lost_view = apply_card_event(view, lost)
    assert lost_view is not None
    expired = CardExpired(card_number=NUMBER, issue_count=1, valid_until=date(2031, 3, 20))
    assert apply_card_event(lost_view, expired) is None


def test_events_for_unknown_cards_are_ignored() -> None:
    assert (
        apply_card_event(None, CardReportedLost(card_number=NUMBER, issue_count=1, reported_at=NOW))
        is None
    )


def card(holder: str = "H12345678", status: HolderStatus = HolderStatus.ACTIVE) -> CardView:
    return CardView(number=NUMBER, issue_count=1, status=status, holder=holder)


def renewal_form(permit: str = "H12345678") -> ApplicationForm:
    return ApplicationForm.model_validate(
        application_body(
            kind="renewal",
            card_number=NUMBER,
            renewal_reason="expiring",
            applicant__travel_permit_number=permit,
        )
    )


def test_renewal_card_checks() -> None:
    assert [r.code for r in card_refusals(renewal_form(), None)] == [RuleCode.CARD_NOT_FOUND]
    assert [r.code for r in card_refusals(renewal_form(), card("H99999999"))] == [
        RuleCode.CARD_NOT_HOLDERS
    ]
    assert card_refusals(renewal_form("H1234567801"), card()) == []
    assert [r.code for r in card_refusals(renewal_form(), card(status=HolderStatus.REVOKED))] == [
        RuleCode.CARD_NOT_REPLACEABLE
    ]


def test_status_only_moves_forward() -> None:
    forward_to_ready = [s for s in ApplicationStatus if status_advances(s, ApplicationStatus.READY)]
    assert forward_to_ready == [
        ApplicationStatus.ACCEPTED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.IN_PRODUCTION,
    ]
    assert not status_advances(ApplicationStatus.COLLECTED, ApplicationStatus.REJECTED)
    assert not any(status_advances(s, ApplicationStatus.ACCEPTED) for s in ApplicationStatus)


def test_sla_standing_precedence() -> None:
    assert sla_states_before(SlaState.AT_RISK) == [SlaState.ON_TRACK]
    assert sla_states_before(SlaState.BREACHED) == [SlaState.ON_TRACK, SlaState.AT_RISK]
    assert SlaState.BREACHED in sla_states_before(SlaState.MET)
    met = SlaMet(
        application_id="a",
        acceptance_point="LIXIA",
        due_date=date(2026, 3, 30),
        ready_on=date(2026, 3, 20),
        working_days_taken=14,
    )
    assert sla_of(met) is SlaState.MET


def test_effective_sla() -> None:
    due = date(2026, 3, 30)
    waiting = ApplicationStatus.IN_PRODUCTION
    assert (
        effective_sla(SlaState.ON_TRACK, waiting, due, date(2026, 3, 30), None) is SlaState.ON_TRACK
    )
    assert (
        effective_sla(SlaState.AT_RISK, waiting, due, date(2026, 3, 31), None) is SlaState.BREACHED
    )
    ready = ApplicationStatus.READY
    assert effective_sla(SlaState.AT_RISK, ready, due, date(2026, 4, 9), due) is SlaState.MET
    assert effective_sla(SlaState.ON_TRACK, ready, due, date(2026, 4, 9), date(2026, 3, 31)) is (
        SlaState.BREACHED
    )


def _at(minute: int) -> datetime:
    return NOW.replace(minute=minute)


CARD = CardStep(NUMBER, 1, date(2026, 3, 20), date(2031, 3, 20), "济南市公安局历下分局")
DUE = date(2026, 3, 30)


def test_ready_counts_only_with_the_issued_card() -> None:
    before_card = [
        StatusStep(ApplicationStatus.APPROVED, _at(1)),
        StatusStep(ApplicationStatus.READY, _at(3), ready_on=date(2026, 3, 20)),
        StatusStep(ApplicationStatus.IN_PRODUCTION, _at(2)),
    ]
    waiting = fold(NOW, DUE, False, before_card)
    assert waiting.status is ApplicationStatus.IN_PRODUCTION
    assert waiting.card is None
    assert waiting.ready_on is None
    done = fold(NOW, DUE, False, [*before_card, CARD])
    assert done.status is ApplicationStatus.READY
    assert done.card is not None
    assert done.card["issuing_authority"] == "济南市公安局历下分局"
    assert [h["status"] for h in done.history] == ["accepted", "approved", "in_production", "ready"]
    assert done.ready_on == date(2026, 3, 20)


def test_issued_card_is_not_shown_before_ready() -> None:
    early = fold(NOW, DUE, False, [StatusStep(ApplicationStatus.APPROVED, _at(1)), CARD])
    assert early.status is ApplicationStatus.APPROVED
    assert early.card is None


def test_late_steps_never_move_back() -> None:
    steps: list[Step] = [
        StatusStep(ApplicationStatus.APPROVED, _at(1)),
        StatusStep(ApplicationStatus.READY, _at(2)),
        StatusStep(ApplicationStatus.IN_PRODUCTION, _at(3)),
        StatusStep(ApplicationStatus.COLLECTED, _at(0)),
        CARD,
    ]
    view = fold(NOW, DUE, False, steps)
    assert view.status is ApplicationStatus.COLLECTED
    assert [h["status"] for h in view.history] == ["accepted", "approved", "ready", "collected"]
    rejected = fold(
        NOW,
        DUE,
        False,
        [
            StatusStep(ApplicationStatus.REJECTED, _at(1), rejection={"code": "x", "message": "y"}),
            StatusStep(ApplicationStatus.APPROVED, _at(2)),
        ],
    )
    assert rejected.status is ApplicationStatus.REJECTED
    assert rejected.rejection == {"code": "x", "message": "y"}


def test_deadline_steps() -> None:
    view = fold(
        NOW,
        DUE,
        True,
        [
            SlaStep(SlaState.AT_RISK),
            SlaStep(SlaState.MET),
            DueStep(date(2026, 4, 2), False, _at(5), "b"),
            DueStep(date(2026, 4, 1), True, _at(4), "a"),
        ],
    )
    assert view.sla is SlaState.MET
    assert (view.due_date, view.due_date_provisional) == (date(2026, 4, 2), False)
    untouched = fold(NOW, DUE, True, [])
    assert (untouched.sla, untouched.due_date, untouched.due_date_provisional) == (
        SlaState.ON_TRACK,
        DUE,
        True,
    )


def test_a_posted_card_is_dispatched_then_collected_whatever_the_clocks() -> None:
    posted = {"carrier": "EMS", "tracking_number": "EA1CN", "dispatched_on": "2026-03-02"}
    steps: list[Step] = [
        StatusStep(ApplicationStatus.COLLECTED, _at(1)),
        StatusStep(ApplicationStatus.DISPATCHED, _at(2), dispatch=posted),
        StatusStep(ApplicationStatus.READY, _at(3)),
        CARD,
    ]
    view = fold(NOW, DUE, False, steps)
    assert [h["status"] for h in view.history] == ["accepted", "ready", "dispatched", "collected"]
    assert view.dispatch == posted
    assert fold(NOW, DUE, False, steps[1:3]).status is ApplicationStatus.ACCEPTED


def test_an_extension_lifts_earlier_warnings_and_its_due_date_counts() -> None:
    calendar = {"version": "v2", "provisional": False, "official_years": [2026]}
    steps: list[Step] = [
        SlaStep(SlaState.AT_RISK, _at(1), "r1"),
        ExtensionStep(4, "交通不便", _at(2)),
        ExtensionStep(10, "more", _at(3)),
        DueStep(date(2026, 4, 14), False, _at(3), "granted", calendar),
    ]
    assert fold(NOW, DUE, False, steps).sla is SlaState.AT_RISK
    steps.append(DueStep(date(2026, 4, 14), False, _at(4), "x", calendar, extended=True))
    view = fold(NOW, DUE, False, steps)
    assert view.sla is SlaState.ON_TRACK
    assert view.extension == {"working_days": 10, "reason": "more", "granted_at": _at(3)}
    assert (view.due_date, view.calendar) == (date(2026, 4, 14), calendar)
    warned_again = fold(NOW, DUE, False, [*steps, SlaStep(SlaState.AT_RISK, _at(9), "r2")])
    assert warned_again.sla is SlaState.AT_RISK


def test_events_become_steps() -> None:
    assert steps_of("e1", NOW, issued()) == [CARD]
    met = SlaMet(
        application_id="a",
        acceptance_point="LIXIA",
        due_date=DUE,
        ready_on=date(2026, 3, 20),
        working_days_taken=14,
    )
    assert steps_of("e2", NOW, met) == [SlaStep(SlaState.MET, NOW, "e2")]
    lost = CardReportedLost(card_number=NUMBER, issue_count=1, reported_at=NOW)
    assert steps_of("e3", NOW, lost) == []


def test_steps_at_the_same_moment_follow_the_order_of_statuses() -> None:
    steps: list[Step] = [
        StatusStep(ApplicationStatus.READY, _at(1)),
        StatusStep(ApplicationStatus.APPROVED, _at(1)),
        StatusStep(ApplicationStatus.IN_PRODUCTION, _at(1)),
        CARD,
    ]
    view = fold(NOW, DUE, False, steps)
    assert [h["status"] for h in view.history] == ["accepted", "approved", "in_production", "ready"]
