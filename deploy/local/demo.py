"""A realistic morning at the acceptance points, pushed through a running system.

HK, MO and TW applicants, adults and a minor with a guardian, first applications, a renewal and
a reissue after loss, and some applications refused at the counter; each journey is printed as
the services move it along.
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
    del argv
    return 0 if len(ready) == len([a for a in submitted.values() if a]) else 1
