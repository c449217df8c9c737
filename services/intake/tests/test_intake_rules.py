"""Every eligibility rule of domain.md, with its boundaries (no I/O)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from intake_forms import application_body, unique_card_number

from permits_common.domain.rule_codes import RuleCode
from permits_common.reference import acceptance_points
from permits_intake.domain.eligibility import (
    anniversary,
    eligibility_refusals,
    is_younger_than,
    latest_qualifying_residence_start,
    months_before,
    normalized_district,
)
from permits_intake.domain.forms import ApplicationForm

POINTS = frozenset(p.code for p in acceptance_points())
DISTRICTS = frozenset(normalized_district(p.district) for p in acceptance_points())
TODAY = date(2026, 11, 26)


def codes(body: dict[str, Any], today: date = TODAY) -> list[str]:
    form = ApplicationForm.model_validate(body)
    return [r.code.value for r in eligibility_refusals(form, today, POINTS, DISTRICTS)]


def test_contract_example_is_eligible() -> None:
    assert codes(application_body()) == []


@pytest.mark.parametrize(
    ("since", "eligible"),
    [("2026-05-26", True), ("2026-05-27", False), ("2020-01-01", True), ("2026-11-26", False)],
)
def test_residence_half_a_year(since: str, eligible: bool) -> None:
    found = codes(application_body(residence__since=since))
    assert (found == []) is eligible
    if not eligible:
        assert found == [RuleCode.RESIDENCE_TOO_SHORT]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 8, 31), date(2026, 2, 28)),
        (date(2024, 8, 31), date(2024, 2, 29)),
        (date(2026, 12, 31), date(2026, 6, 30)),
        (date(2026, 3, 31), date(2025, 9, 30)),
        (date(2026, 1, 15), date(2025, 7, 15)),
        (date(2026, 11, 26), date(2026, 5, 26)),
    ],
)
def test_six_months_before_handles_month_ends(day: date, expected: date) -> None:
    assert months_before(day, 6) == expected
    assert latest_qualifying_residence_start(day) == expected


def test_residence_on_month_end_boundary() -> None:
    assert codes(application_body(residence__since="2026-02-28"), date(2026, 8, 31)) == []
    assert codes(application_body(residence__since="2026-03-01"), date(2026, 8, 31)) == [
        RuleCode.RESIDENCE_TOO_SHORT
    ]


@pytest.mark.parametrize("district", ["历下区", "济南市历下区", "莱芜区", "平阴县"])
def test_residence_in_jinan(district: str) -> None:
    assert codes(application_body(residence__district=district)) == []


def test_residence_outside_jinan() -> None:
    assert codes(application_body(residence__district="朝阳区")) == [
        RuleCode.RESIDENCE_NOT_IN_JINAN
    ]


def test_no_basis() -> None:
    assert codes(application_body(bases=[])) == [RuleCode.NO_BASIS]


@pytest.mark.parametrize("evidence", ["", "   "])
def test_basis_without_evidence(evidence: str) -> None:
    body = application_body(bases=[{"type": "study", "evidence": evidence}])
    form = ApplicationForm.model_validate(body)
    refusals = eligibility_refusals(form, TODAY, POINTS, DISTRICTS)
    assert [(r.code, r.field) for r in refusals] == [
        (RuleCode.BASIS_EVIDENCE_MISSING, "bases.0.evidence")
    ]


def test_one_basis_with_evidence_among_several() -> None:
    bases = [{"type": "employment", "evidence": "c-1"}, {"type": "residence", "evidence": ""}]
    assert codes(application_body(bases=bases)) == [RuleCode.BASIS_EVIDENCE_MISSING]


GUARDIAN = {"name": "陈大明", "relationship": "father", "id_document": "H87654321"}


@pytest.mark.parametrize(
    ("birth", "under_16"),
    [("2010-11-26", False), ("2010-11-27", True), ("2010-11-25", False), ("2015-01-01", True)],
)
def test_guardian_required_under_16(birth: str, under_16: bool) -> None:
    found = codes(application_body(applicant__birth_date=birth))
    assert found == ([RuleCode.GUARDIAN_REQUIRED] if under_16 else [])
    assert codes(application_body(applicant__birth_date=birth, guardian=GUARDIAN)) == []


def test_leap_day_birthday() -> None:
    assert anniversary(date(2008, 2, 29), 16) == date(2024, 2, 29)
    assert anniversary(date(2008, 2, 29), 17) == date(2025, 3, 1)
    assert is_younger_than(date(2008, 2, 29), 17, date(2025, 2, 28)) is True
    assert is_younger_than(date(2008, 2, 29), 17, date(2025, 3, 1)) is False


def test_birth_date_in_future() -> None:
    assert codes(application_body(applicant__birth_date="2026-11-27")) == [
        RuleCode.BIRTH_DATE_IN_FUTURE
    ]
    assert RuleCode.BIRTH_DATE_IN_FUTURE not in codes(
        application_body(applicant__birth_date="2026-11-26", guardian=GUARDIAN)
    )


@pytest.mark.parametrize(
    ("region", "number", "expected"),
    [
        ("HK", "H12345678", []),
        ("HK", "H1234567801", []),
        ("MO", "M12345678", []),
        ("TW", "12345678", []),
        ("TW", "1234567801", []),
        ("HK", "H1234567", [RuleCode.PERMIT_NUMBER_INVALID]),
        ("HK", "H123456789", [RuleCode.PERMIT_NUMBER_INVALID]),
        ("HK", "X12345678", [RuleCode.PERMIT_NUMBER_INVALID]),
        ("HK", "M12345678", [RuleCode.REGION_MISMATCH]),
        ("TW", "H12345678", [RuleCode.REGION_MISMATCH]),
        ("MO", "12345678", [RuleCode.REGION_MISMATCH]),
    ],
)
def test_travel_permit_matches_region(region: str, number: str, expected: list[str]) -> None:
    body = application_body(applicant__region=region, applicant__travel_permit_number=number)
    assert codes(body) == expected


@pytest.mark.parametrize(
    ("biometrics", "birth", "expected"),
    [
        ({"photo_ref": None, "fingerprints_ref": "fp"}, "1990-01-01", ["biometrics_missing"]),
        ({"photo_ref": " ", "fingerprints_ref": "fp"}, "1990-01-01", ["biometrics_missing"]),
        ({"photo_ref": "ph", "fingerprints_ref": None}, "1990-01-01", ["biometrics_missing"]),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "no_fingers"},
            "1990-01-01",
            [],
        ),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "unreadable"},
            "1990-01-01",
            [],
        ),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "lazy"},
            "1990-01-01",
            ["fingerprint_waiver_invalid"],
        ),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "under_6"},
            "1990-01-01",
            ["fingerprint_waiver_invalid"],
        ),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "under_6"},
            "2020-11-27",
            [],
        ),
        (
            {"photo_ref": "ph", "fingerprints_ref": None, "fingerprint_waiver": "under_6"},
            "2020-11-26",
            ["fingerprint_waiver_invalid"],
        ),
    ],
)
def test_photo_and_fingerprints_or_waiver(
    biometrics: dict[str, Any], birth: str, expected: list[str]
) -> None:
    body = application_body(biometrics=biometrics, applicant__birth_date=birth, guardian=GUARDIAN)
    assert codes(body) == expected


def test_unknown_acceptance_point() -> None:
    assert codes(application_body(acceptance_point="NOWHERE")) == [
        RuleCode.UNKNOWN_ACCEPTANCE_POINT
    ]


def test_every_point_is_known() -> None:
    for point in POINTS:
        assert codes(application_body(acceptance_point=point)) == []
    assert len(POINTS) == 16


def test_renewal_needs_card_number_and_reason() -> None:
    assert codes(application_body(kind="renewal")) == [
        RuleCode.CARD_NUMBER_REQUIRED,
        RuleCode.RENEWAL_REASON_REQUIRED,
    ]
    body = application_body(kind="renewal", card_number=unique_card_number())
    assert codes(body) == [RuleCode.RENEWAL_REASON_REQUIRED]
    body["renewal_reason"] = "expiring"
    assert codes(body) == []


def test_reissue_needs_a_valid_card_number_only() -> None:
    assert codes(application_body(kind="reissue")) == [RuleCode.CARD_NUMBER_REQUIRED]
    assert codes(application_body(kind="reissue", card_number="810000199001010012")) == [
        RuleCode.CARD_NUMBER_INVALID
    ]
    assert codes(application_body(kind="reissue", card_number=unique_card_number())) == []


def test_all_problems_are_reported_at_once() -> None:
    body = application_body(
        bases=[], residence__since="2026-10-01", acceptance_point="X", biometrics={}
    )
    assert codes(body) == [
        RuleCode.UNKNOWN_ACCEPTANCE_POINT,
        RuleCode.RESIDENCE_TOO_SHORT,
        RuleCode.NO_BASIS,
        RuleCode.BIOMETRICS_MISSING,
        RuleCode.BIOMETRICS_MISSING,
    ]
