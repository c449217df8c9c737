"""A realistic morning at the acceptance points, pushed through a running system.

HK, MO and TW applicants, adults and a minor with a guardian, first applications, a renewal and
a reissue after loss, and some applications refused at the counter; then the rest of the law: an
operator's extension, a 2027 due date that moves when 2027's arrangement is loaded, and a card
sent by post. Each journey is printed as the services move it along.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import httpx

from permits_intake.domain.examples import application_body

CLERK = {"Authorization": "Bearer dev-clerk"}
OPS = {"Authorization": "Bearer dev-ops"}
HOTEL = {"Authorization": "Bearer dev-agency-hotel"}


def _permit(region: str) -> str:
    digits = f"{random.randrange(10**8):08d}"
    return {"HK": "H", "MO": "M", "TW": ""}[region] + digits


def application(
    *,
    name: str,
    latin: str,
    sex: str,
    birth: date,
    region: str,
    point: str,
    language: str = "zh-Hant",
    since: date | None = None,
    bases: list[dict[str, str]] | None = None,
    guardian: dict[str, str] | None = None,
    kind: str = "first",
    card_number: str | None = None,
    renewal_reason: str | None = None,
    travel_permit: str | None = None,
) -> dict[str, Any]:
    """A request body as a clerk's tool would send it: the contract's example, varied."""
    changes: dict[str, Any] = {
        "kind": kind,
        "card_number": card_number,
        "renewal_reason": renewal_reason,
        "acceptance_point": point,
        "applicant__name": name,
        "applicant__name_latin": latin,
        "applicant__sex": sex,
        "applicant__birth_date": birth.isoformat(),
        "applicant__region": region,
        "applicant__travel_permit_number": travel_permit or _permit(region),
        "applicant__phone": f"+852{random.randrange(10**8):08d}",
        "applicant__email": f"{latin.split()[0].lower()}@example.com",
        "applicant__language": language,
        "guardian": guardian,
        "residence__since": (since or date.today() - timedelta(days=400)).isoformat(),
    }
    if bases is not None:
        changes["bases"] = bases
    return application_body(**changes)


class Demo:
    """Talks to intake (and rights for verification) like the clerks' tools do."""

    def __init__(self, intake: str, rights: str) -> None:
        self.intake = httpx.Client(base_url=intake + "/api/v1", timeout=10)
        self.rights = httpx.Client(base_url=rights + "/api/v1", timeout=10)
        self.issuance = httpx.Client(base_url=intake.replace(":8001", ":8002") + "/api/v1")
        self.centre = httpx.Client(base_url=intake.replace(":8001", ":8010") + "/api/v1")

    def submit(self, label: str, body: dict[str, Any]) -> str | None:
        response = self.intake.post(
            "/applications", json=body, headers={**CLERK, "Idempotency-Key": str(uuid.uuid4())}
        )
        if response.status_code != 201:
            problem = response.json()
            print(
                f"  {label:<44} refused {response.status_code} {problem.get('code')}: "
                f"{problem.get('detail')}"
            )
            return None
        accepted = response.json()
        print(f"  {label:<44} accepted {accepted['id']} due {accepted['due_date']}")
        return str(accepted["id"])

    def wait(self, app_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.intake.get(f"/applications/{app_id}", headers=CLERK).json()
            if view.get("status") in statuses:
                break
            time.sleep(0.5)
        return view

    def wait_field(self, app_id: str, field: str, done: Any, timeout: float = 60) -> dict[str, Any]:
        """The application's view once `done(view[field])` holds (or the last one seen)."""
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.intake.get(f"/applications/{app_id}", headers=CLERK).json()
            if done(view.get(field)):
                break
            time.sleep(0.5)
        return view

    def provisional_deadlines(
        self, year: int, *, including: str, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Issuance's open deadlines on a provisional year, once it has started `including`'s
        clock (intake shows the due date before issuance has read the event)."""
        deadline = time.monotonic() + timeout
        listed: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            answer = self.issuance.get("/sla/provisional", params={"year": year}, headers=OPS)
            listed = answer.json().get("deadlines", [])
            if any(item.get("application_id") == including for item in listed):
                break
            time.sleep(0.5)
        return listed

    def journey(self, label: str, view: dict[str, Any]) -> None:
        steps = " → ".join(step["status"] for step in view.get("history", []))
        card = view.get("card") or {}
        extra = f" card {card.get('number')} #{card.get('issue_count')}" if card else ""
        rejection = view.get("rejection")
        if rejection:
            extra = f" ({rejection['code']})"
        print(f"  {label:<44} {steps}{extra}  sla={view.get('sla')}")


def run_demo(intake: str, argv: Sequence[str]) -> int:
    """Submit, follow and finish a set of applications; 0 when every journey completed."""
    rights = intake.replace(":8001", ":8003")
    demo = Demo(intake, rights)
    try:
        demo.intake.get("/acceptance-points").raise_for_status()
    except httpx.HTTPError:
        print(
            f"error: intake is not answering at {intake}; start it with ./permits run",
            file=sys.stderr,
        )
        return 1
    today = date.today()
    people = {
        "Chan Tai Man, HK, first": application(
            name="陈大文",
            latin="CHAN TAI MAN",
            sex="M",
            birth=date(1990, 1, 1),
            region="HK",
            point="LIXIA",
        ),
        "Wong Mei Ling, MO, first, zh-Hans": application(
            name="黄美玲",
            latin="WONG MEI LING",
            sex="F",
            birth=date(1985, 6, 12),
            region="MO",
            point="SHIZHONG",
            language="zh-Hans",
            bases=[{"type": "residence", "evidence": "tenancy 2024-88"}],
        ),
        "Lin Chih-Hao, TW, first, en": application(
            name="林志豪",
            latin="LIN CHIH HAO",
            sex="M",
            birth=date(1978, 11, 3),
            region="TW",
            point="GAOXIN",
            language="en",
        ),
        "Chan Siu Ming, HK, 12 years old": application(
            name="陈小明",
            latin="CHAN SIU MING",
            sex="M",
            birth=today.replace(year=today.year - 12),
            region="HK",
            point="LIXIA",
            bases=[{"type": "study", "evidence": "school enrolment 2025-331"}],
            guardian={"name": "陈大文", "relationship": "father", "id_document": "H12345678"},
        ),
    }
    refused = {
        "refused: lived in Jinan 3 months": application(
            name="李四",
            latin="LEE SEI",
            sex="M",
            birth=date(1992, 2, 2),
            region="HK",
            point="HUAIYIN",
            since=today - timedelta(days=90),
        ),
        "refused: minor without guardian": application(
            name="张小红",
            latin="CHEUNG SIU HUNG",
            sex="F",
            birth=today.replace(year=today.year - 10),
            region="MO",
            point="TIANQIAO",
        ),
        "refused: HK number for a TW applicant": application(
            name="王五",
            latin="WANG WU",
            sex="M",
            birth=date(1980, 5, 5),
            region="TW",
            point="LICHENG",
            travel_permit="H12345678",
        ),
        "refused: no basis": application(
            name="赵六",
            latin="CHIU LUK",
            sex="F",
            birth=date(1995, 7, 7),
            region="HK",
            point="ZHANGQIU",
            bases=[],
        ),
    }
    print("\nSubmitting applications at the counters:")
    submitted = {label: demo.submit(label, body) for label, body in {**people, **refused}.items()}
    print("\nFollowing each accepted application until its card is ready:")
    ready: dict[str, dict[str, Any]] = {}
    for label, app_id in submitted.items():
        if app_id is None:
            continue
        view = demo.wait(app_id, {"ready", "rejected"})
        demo.journey(label, view)
        if view.get("status") == "ready":
            ready[label] = view
    print("\nCollection, verification by a hotel, loss and reissue, renewal:")
    for view in ready.values():
        demo.intake.post(f"/applications/{view['id']}/collect", headers=CLERK)
    first = ready.get("Chan Tai Man, HK, first")
    if first:
        number = first["card"]["number"]
        body = people["Chan Tai Man, HK, first"]
        print(
            "  hotel verifies the card:",
            demo.rights.get(
                "/verify", params={"number": number, "name": "陈大文"}, headers=HOTEL
            ).json(),
        )
        demo.intake.post(f"/cards/{number}/report-lost", headers=CLERK)
        time.sleep(1)
        print(
            "  after the loss report:",
            demo.rights.get(
                "/verify", params={"number": number, "name": "陈大文"}, headers=HOTEL
            ).json(),
        )
        reissue = {**body, "kind": "reissue", "card_number": number}
        app_id = demo.submit("Chan Tai Man, reissue after loss", reissue)
        if app_id:
            demo.journey("Chan Tai Man, reissue after loss", demo.wait(app_id, {"ready"}))
            print(
                "  old issue:",
                demo.rights.get(
                    "/verify",
                    params={"number": number, "name": "陈大文", "issue_count": 1},
                    headers=HOTEL,
                ).json(),
            )
    second = ready.get("Lin Chih-Hao, TW, first, en")
    if second:
        renewal = {
            **people["Lin Chih-Hao, TW, first, en"],
            "kind": "renewal",
            "card_number": second["card"]["number"],
            "renewal_reason": "details_changed",
        }
        app_id = demo.submit("Lin Chih-Hao, renewal (details changed)", renewal)
        if app_id:
            demo.journey("Lin Chih-Hao, renewal", demo.wait(app_id, {"ready"}))
    print(
        "\nMessages and agency feeds: see the notify and rights services "
        "(GET /api/v1/notifications, /api/v1/agencies/<key>/deliveries with dev-ops)."
    )
    law_done = law_journeys(demo)
    del argv
    return 0 if law_done and len(ready) == len([a for a in submitted.values() if a]) else 1


# An example of the arrangement the State Council publishes each November (New Year's Day off,
# the Spring Festival week off with a Saturday worked after it); the real one is loaded the same
# way, from the operators' calendar form or `PUT /api/v1/calendar/2027`.
EXAMPLE_2027 = {
    "holidays": ["2027-01-01", *[f"2027-02-{day:02d}" for day in range(5, 14)]],
    "workdays": ["2027-02-20"],
}


def law_journeys(demo: Demo) -> bool:
    """Extension, a provisional 2027 date loaded, a posted card; True when each completed."""
    print("\nThe rest of the law: extension, the calendar behind a due date, collection by post:")
    try:
        before = demo.centre.post("/control", json={}).json()
        demo.centre.post("/control", json={"delay_seconds": 40})
    except httpx.HTTPError:
        print("  (the production centre simulator is not answering; skipped)")
        return True
    try:
        extended = _extension(demo)
        moved = _calendar_2027(demo)
    finally:
        demo.centre.post("/control", json={"delay_seconds": before["delay_seconds"]})
    posted = _posted_card(demo)
    for label, app_id in (("extended", extended), ("dated in 2027", moved)):
        if app_id:
            demo.journey(f"card of the application {label}", demo.wait(app_id, {"ready"}, 90))
    return extended is not None and moved is not None and posted


def _extension(demo: Demo) -> str | None:
    body = application(
        name="何家欣",
        latin="HO KA YAN",
        sex="F",
        birth=date(1991, 4, 4),
        region="HK",
        point="PINGYIN",
    )
    app_id = demo.submit("Ho Ka Yan, HK, mountain village", body)
    if app_id is None:
        return None
    due = demo.intake.get(f"/applications/{app_id}", headers=CLERK).json()["due_date"]
    granted = demo.intake.post(
        f"/applications/{app_id}/extension",
        json={"working_days": 5, "reason": "交通不便: the mountain road is closed"},
        headers=OPS,
    )
    view = granted.json()
    print(
        f"  extension of 5 working days: due {due} → {view.get('due_date')} {view.get('extension')}"
    )
    refused = demo.intake.post(
        f"/applications/{app_id}/extension",
        json={"working_days": 6, "reason": "still closed"},
        headers=OPS,
    )
    print(f"  6 more (11 in total): {refused.status_code} {refused.json().get('code')}")
    return app_id if granted.status_code == 200 and refused.status_code == 422 else None


def _calendar_2027(demo: Demo) -> str | None:
    """An application dated in 2027 before 2027 is loaded; "" when an earlier run loaded it."""
    accept_on = date(2027, 1, 18)
    known = demo.intake.get(
        "/calendar/due-date", params={"accepted_on": accept_on.isoformat()}, headers=CLERK
    ).json()
    if not known.get("provisional"):
        print("  2027's arrangement is loaded already (an earlier demo run): nothing to move")
        return ""
    offset = (accept_on - date.today()).days
    demo.intake.put("/dev/clock", json={"offset_days": offset}, headers=OPS)
    try:
        body = application(
            name="周子健",
            latin="CHOW TSZ KIN",
            sex="M",
            birth=date(1988, 8, 8),
            region="MO",
            point="LICHENG",
            since=accept_on - timedelta(days=400),
        )
        app_id = demo.submit("Chow Tsz Kin, MO, accepted 18 Jan 2027", body)
    finally:
        demo.intake.put("/dev/clock", json={"offset_days": 0}, headers=OPS)
    if app_id is None:
        return None
    view = demo.wait_field(app_id, "calendar", lambda c: bool(c and c.get("provisional")))
    print(f"  due {view['due_date']} counted on {view['calendar']}")
    waiting = demo.provisional_deadlines(2027, including=app_id)
    print(f"  open deadlines on the provisional 2027: {len(waiting)}")
    demo.intake.put("/calendar/2027", json=EXAMPLE_2027, headers=OPS)
    after = demo.wait_field(app_id, "due_date", lambda due: due != view["due_date"])
    print(f"  2027 loaded: due {view['due_date']} → {after['due_date']} on {after['calendar']}")
    again = demo.intake.put("/calendar/2027", json=EXAMPLE_2027, headers=OPS)
    print(f"  the same arrangement again: {again.status_code}, nothing moves, nothing published")
    return app_id if after["due_date"] != view["due_date"] else None


def _posted_card(demo: Demo) -> bool:
    body = application(
        name="郑美华",
        latin="CHENG MEI WAH",
        sex="F",
        birth=date(1983, 3, 3),
        region="TW",
        point="LAIWU",
        language="en",
    )
    body["collection"] = {
        "method": "post",
        "recipient": "郑美华",
        "phone": "+8653188888888",
        "address": "莱芜区凤城大街8号",
        "postcode": "271100",
    }
    app_id = demo.submit("Cheng Mei Wah, TW, card by post", body)
    if app_id is None:
        return False
    demo.wait(app_id, {"ready"})
    demo.intake.post(
        f"/applications/{app_id}/dispatch",
        json={"carrier": "EMS", "tracking_number": "EA123456789CN"},
        headers=CLERK,
    )
    demo.intake.post(f"/applications/{app_id}/collect", headers=CLERK)
    view = demo.wait(app_id, {"collected"})
    demo.journey("Cheng Mei Wah, posted", view)
    return view.get("status") == "collected"
