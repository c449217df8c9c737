"""Who may apply (domain.md, 申领条件): every rule returns refusals, never raises.

Each refusal names a stable rule code, the form field it is about and a message for the clerk,
so the API can show all problems at once and the metric can count the first one.
"""

from __future__ import annotations

import calendar
from collections.abc import Container
from dataclasses import dataclass
from datetime import date

from permits_common.domain import permit_number, travel_permit
from permits_common.domain.card import ApplicationKind
from permits_common.domain.rule_codes import RuleCode
from permits_intake.domain.forms import ApplicationForm

RESIDENCE_MONTHS = 6
GUARDIAN_AGE = 16
WAIVER_UNDER_6_AGE = 6
FINGERPRINT_WAIVERS = frozenset({"under_6", "no_fingers", "unreadable"})
_CITY_PREFIXES = ("济南市", "济南")


@dataclass(frozen=True, slots=True)
class Refusal:
    """One failed rule: what failed, where in the form, and why in words."""

    code: RuleCode
    field: str
    message: str

    def as_error(self) -> dict[str, str]:
        """The `errors[]` entry of a problem document."""
        return {"field": self.field, "code": self.code.value, "message": self.message}


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier, clamped to that month's last day
    (31 August minus 6 months is 28 or 29 February)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def anniversary(birth_date: date, years: int) -> date:
    """The day a person turns `years` old; someone born on 29 February turns it on 1 March
    in a common year (the day after 28 February, when the leap day would have been)."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 3, 1)


def is_younger_than(birth_date: date, years: int, on: date) -> bool:
    """True before the birthday of that age; on the birthday itself the person has reached it."""
    return on < anniversary(birth_date, years)


def latest_qualifying_residence_start(application_date: date) -> date:
    """`residence.since` must be on or before this day (half a year of living in Jinan)."""
    return months_before(application_date, RESIDENCE_MONTHS)


def residence_refusals(
    form: ApplicationForm, today: date, jinan_districts: Container[str]
) -> list[Refusal]:
    """Half a year of residence in Jinan on the application date."""
    found: list[Refusal] = []
    latest = latest_qualifying_residence_start(today)
    if form.residence.since > latest:
        found.append(
            Refusal(
                RuleCode.RESIDENCE_TOO_SHORT,
                "residence.since",
                f"residence must have started on or before {latest.isoformat()} "
                f"(half a year before {today.isoformat()})",
            )
        )
    if normalized_district(form.residence.district) not in jinan_districts:
        found.append(
            Refusal(
                RuleCode.RESIDENCE_NOT_IN_JINAN,
                "residence.district",
                "the district must be one of Jinan's districts or counties",
            )
        )
    return found


def normalized_district(district: str) -> str:
    """`济南市历下区` and `历下区` name the same district."""
    name = district.strip()
    for prefix in _CITY_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return name


def basis_refusals(form: ApplicationForm) -> list[Refusal]:
    """At least one basis, and every basis with an evidence reference."""
    if not form.bases:
        return [
            Refusal(
                RuleCode.NO_BASIS,
                "bases",
                "at least one basis is required: employment, residence or study",
            )
        ]
    return [
        Refusal(
            RuleCode.BASIS_EVIDENCE_MISSING,
            f"bases.{index}.evidence",
            f"the {basis.type} basis needs an evidence reference",
        )
        for index, basis in enumerate(form.bases)
        if not basis.evidence.strip()
    ]


def applicant_refusals(form: ApplicationForm, today: date) -> list[Refusal]:
    """Birth date, guardian for minors, and the travel permit matching the region."""
    applicant = form.applicant
    found: list[Refusal] = []
    if applicant.birth_date > today:
        found.append(
            Refusal(
                RuleCode.BIRTH_DATE_IN_FUTURE,
                "applicant.birth_date",
                "the birth date lies in the future",
            )
        )
    elif form.guardian is None and is_younger_than(applicant.birth_date, GUARDIAN_AGE, today):
        found.append(
            Refusal(
                RuleCode.GUARDIAN_REQUIRED,
                "guardian",
                "an applicant under 16 applies through a guardian "
                "(name, relationship and identity document)",
            )
        )
    number = applicant.travel_permit_number
    problem = travel_permit.problem(number, applicant.region)
    if problem is not None:
        mismatch = travel_permit.region_of(number) is not None
        found.append(
            Refusal(
                RuleCode.REGION_MISMATCH if mismatch else RuleCode.PERMIT_NUMBER_INVALID,
                "applicant.travel_permit_number",
                problem,
            )
        )
    return found


def biometric_refusals(form: ApplicationForm, today: date) -> list[Refusal]:
    """Photo always; fingerprints, or a waiver with an allowed reason that fits the applicant."""
    biometrics = form.biometrics
    found: list[Refusal] = []
    if not (biometrics.photo_ref or "").strip():
        found.append(
            Refusal(
                RuleCode.BIOMETRICS_MISSING,
                "biometrics.photo_ref",
                "a photo captured at the acceptance point is required",
            )
        )
    waiver = biometrics.fingerprint_waiver
    has_fingerprints = bool((biometrics.fingerprints_ref or "").strip())
    if waiver is not None:
        if waiver not in FINGERPRINT_WAIVERS:
            found.append(
                Refusal(
                    RuleCode.FINGERPRINT_WAIVER_INVALID,
                    "biometrics.fingerprint_waiver",
                    f"the waiver reason must be one of {', '.join(sorted(FINGERPRINT_WAIVERS))}",
                )
            )
        elif waiver == "under_6" and not is_younger_than(
            form.applicant.birth_date, WAIVER_UNDER_6_AGE, today
        ):
            found.append(
                Refusal(
                    RuleCode.FINGERPRINT_WAIVER_INVALID,
                    "biometrics.fingerprint_waiver",
                    "the under_6 waiver applies only to children under 6",
                )
            )
    elif not has_fingerprints:
        found.append(
            Refusal(
                RuleCode.BIOMETRICS_MISSING,
                "biometrics.fingerprints_ref",
                "fingerprints are required unless waived with a reason",
            )
        )
    return found


def kind_refusals(form: ApplicationForm) -> list[Refusal]:
    """Renewal and reissue name the card they replace; renewal says why."""
    if form.kind is ApplicationKind.FIRST:
        return []
    found: list[Refusal] = []
    if not form.card_number:
        found.append(
            Refusal(
                RuleCode.CARD_NUMBER_REQUIRED,
                "card_number",
                f"a {form.kind.value} names the card it replaces",
            )
        )
    else:
        problems = permit_number.problems(form.card_number)
        if problems:
            found.append(Refusal(RuleCode.CARD_NUMBER_INVALID, "card_number", "; ".join(problems)))
    if form.kind is ApplicationKind.RENEWAL and form.renewal_reason is None:
        found.append(
            Refusal(
                RuleCode.RENEWAL_REASON_REQUIRED,
                "renewal_reason",
                "a renewal needs a reason: expiring, damaged or details_changed",
            )
        )
    return found


def point_refusals(form: ApplicationForm, known_points: Container[str]) -> list[Refusal]:
    """The acceptance point must be one of the sixteen."""
    if form.acceptance_point in known_points:
        return []
    return [
        Refusal(
            RuleCode.UNKNOWN_ACCEPTANCE_POINT,
            "acceptance_point",
            "not one of the sixteen acceptance points (see GET /api/v1/acceptance-points)",
        )
    ]


def eligibility_refusals(
    form: ApplicationForm,
    today: date,
    known_points: Container[str],
    jinan_districts: Container[str],
) -> list[Refusal]:
    """Every rule that needs only the form and the date; empty means the form is eligible."""
    return [
        *point_refusals(form, known_points),
        *kind_refusals(form),
        *applicant_refusals(form, today),
        *residence_refusals(form, today, jinan_districts),
        *basis_refusals(form),
        *biometric_refusals(form, today),
    ]
