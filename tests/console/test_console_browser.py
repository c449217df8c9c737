"""The console in a real browser (Debian's Chromium), against the whole running system.

A clerk accepts an adult and a minor (refused first without a guardian, the refusal next to the
field), prints the receipt as a PDF; the applicant follows the status in zh-Hant and en; an
operator sees an application at risk once the development clocks move, and loads next year's
calendar after a preview. Every page is checked with axe-core and photographed at 1280×800 and
390×844 into docs/console/screenshots/.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import threading
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from permits_common.domain.calendar import WorkingDayCalendar
from permits_common.events.models import DeadLetter
from permits_common.kafka import EventPublisher
from permits_common.settings import CommonSettings
from tests.console.conftest import new_pages, sign_in
from tests.journeys import CLERK, OPS, application, travel_permit

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(600)]

CREATED: dict[str, dict[str, str]] = {}
NEXT_YEAR = date.today().year + 1
NEXT_YEAR_ARRANGEMENT = {
    "holidays": [f"{NEXT_YEAR}-01-01", *[f"{NEXT_YEAR}-02-{d:02d}" for d in range(5, 14)]],
    "workdays": [f"{NEXT_YEAR}-02-20"],
}


def _fill(page: Page, values: dict[str, str]) -> None:
    for field, value in values.items():
        element_id = "#f-" + field.replace(".", "-")
        if page.locator(element_id).evaluate("e => e.tagName") == "SELECT":
            page.select_option(element_id, value)
        else:
            page.fill(element_id, value)


def _adult(permit: str) -> dict[str, str]:
    return {
        "acceptance_point": "LIXIA",
        "applicant.name": "陈大文",
        "applicant.name_latin": "CHAN TAI MAN",
        "applicant.sex": "M",
        # a birth date of its own: card numbers derive from it, and a shared broker carries
        # other systems' events about the same numbers
        "applicant.birth_date": (
            date(1960, 1, 1) + timedelta(days=secrets.randbelow(12000))
        ).isoformat(),
        "applicant.region": "HK",
        "applicant.travel_permit_number": permit,
        "applicant.phone": "+85291234567",
        "applicant.email": "chan@example.com",
        "residence.address": "历下区科院路6号",
        "residence.district": "历下区",
        "residence.since": (date.today() - timedelta(days=400)).isoformat(),
        "bases.0.evidence": "labour contract 2025-0117",
        "biometrics.photo_ref": "ph-001",
        "biometrics.fingerprints_ref": "fp-001",
    }


def _minor(permit: str) -> dict[str, str]:
    child = _adult(permit)
    child.update(
        {
            "acceptance_point": "SHIZHONG",
            "applicant.name": "陈小明",
            "applicant.name_latin": "CHAN SIU MING",
            "applicant.birth_date": (date.today() - timedelta(days=5 * 365)).isoformat(),
            "applicant.region": "MO",
            "residence.address": "市中区经四路100号",
            "residence.district": "市中区",
            "bases.0.type": "study",
            "bases.0.evidence": "school enrolment 2025-88",
            "biometrics.fingerprints_ref": "",
            "biometrics.fingerprint_waiver": "under_6",
        }
    )
    return child


APPLICATION_PAGE = re.compile(r"/clerk/applications/([0-9a-f-]{36})\?done=accepted$")


def _application_id(page: Page) -> str:
    """Wait for the application page a successful submission leads to; its id."""
    page.wait_for_url(APPLICATION_PAGE)
    found = APPLICATION_PAGE.search(page.url)
    assert found is not None
    return found.group(1)


def _api(system: Any, service: str) -> httpx.Client:
    """Moving issuance's development clock runs its timers before answering: a long timeout."""
    return httpx.Client(base_url=system.url(service), timeout=180)


def _posted_application(intake: httpx.Client) -> str:
    """An application whose card is to be posted (邮寄), accepted through the API."""
    body = application(
        point="LIXIA", birth=date(1960, 1, 1) + timedelta(days=secrets.randbelow(12000))
    )
    body["collection"] = {
        "method": "post",
        "recipient": "陈大文",
        "phone": "+8653188888888",
        "address": "历下区科院路6号3单元501",
        "postcode": "250014",
    }
    accepted = intake.post(
        "/api/v1/applications",
        json=body,
        headers={**CLERK, "Idempotency-Key": body["applicant"]["travel_permit_number"]},
    )
    assert accepted.status_code == 201, accepted.text
    found: str = accepted.json()["id"]
    return found


def _dead_letter(system: Any, key: str) -> None:
    """A message some consumer gave up on, as it lands on the dead-letter topic (published from
    a thread: Playwright's sync driver keeps this thread's event loop)."""

    async def publish() -> None:
        settings = CommonSettings(kafka_bootstrap=system.infra.kafka_bootstrap())
        publisher = EventPublisher(settings, "notify")
        await publisher.start()
        try:
            await publisher.publish(
                publisher.event(
                    DeadLetter(
                        original_topic="permits.sla.v1",
                        original_partition=0,
                        original_offset=7,
                        original_key=key,
                        original_value="{}",
                        consumer="permits-notify",
                        error="invalid permits.sla.at_risk data",
                    )
                )
            )
        finally:
            await publisher.stop()

    worker = threading.Thread(target=lambda: asyncio.run(publish()))
    worker.start()
    worker.join(60)


def _wait(probe: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"not reached within {timeout:.0f}s; last: {last!r}")


def test_a_clerk_accepts_an_adult_and_a_minor_and_prints_the_receipt(
    browser: Browser, console_url: str, system: Any
) -> None:
    pages = new_pages(browser, console_url)
    pages.open("/signin")
    pages.check("signin")
    sign_in(pages, "dev-clerk")

    adult_permit = travel_permit("HK")
    page = pages.open("/clerk/applications/new?point=LIXIA")
    pages.check("clerk-new-application")
    _fill(page, _adult(adult_permit))
    page.click("#submit-application")
    adult_id = _application_id(page)
    assert "申请已受理" in page.content()
    assert page.locator("#no-actions").is_visible(), "an empty actions section says why"
    pages.check("clerk-application")
    page = pages.open("/clerk?point=LIXIA&sort=accepted_on&descending=true")
    assert page.locator("table tbody tr").count() >= 1
    pages.check("clerk-worklist")

    page = pages.open(f"/clerk/applications/{adult_id}/receipt")
    due = page.locator("#receipt-due").inner_text()
    assert page.locator("#receipt-number").inner_text() == adult_id
    pages.check("clerk-receipt")
    page.emulate_media(media="print")
    pdf = PdfReader(io.BytesIO(page.pdf(format="A4")))
    text = "".join(p.extract_text() for p in pdf.pages)
    assert due[:10] in text
    assert "受理回执" in text
    page.emulate_media(media="screen")

    minor_permit = travel_permit("MO")
    page = pages.open("/clerk/applications/new?point=SHIZHONG")
    _fill(page, _minor(minor_permit))
    page.click("#submit-application")
    refusal = page.locator("#f-guardian-name-error")
    assert "guardian_required" in refusal.inner_text()
    assert "未满16周岁须由监护人代为申请" in refusal.inner_text()
    assert "A guardian" not in refusal.inner_text()
    assert page.get_attribute("#f-guardian-name", "aria-invalid") == "true"
    assert page.input_value("#f-applicant-name") == "陈小明"
    pages.check("clerk-new-application-refused")
    _fill(
        page,
        {
            "guardian.name": "陈大文",
            "guardian.relationship": "父亲",
            "guardian.id_document": "H12345678",
        },
    )
    page.click("#submit-application")
    minor_id = _application_id(page)
    assert minor_id != adult_id
    CREATED["adult"] = {"id": adult_id, "permit": adult_permit, "due": due[:10]}
    with _api(system, "intake") as intake:
        CREATED["posted"] = {"id": _posted_application(intake)}
    CREATED["minor"] = {"id": minor_id, "permit": minor_permit}


def test_resubmitting_the_same_form_creates_one_application(
    browser: Browser, console_url: str
) -> None:
    pages = new_pages(browser, console_url)
    sign_in(pages, "dev-clerk")
    page = pages.open("/clerk/applications/new?point=LIXIA")
    _fill(page, _adult(travel_permit("TW").zfill(8)))
    page.select_option("#f-applicant-region", "TW")
    fields = page.evaluate(
        "() => Object.fromEntries(new FormData(document.querySelector('form.application')))"
    )
    answers = [
        pages.context.request.post(
            console_url + "/clerk/applications", form=fields, max_redirects=0
        )
        for _ in range(2)
    ]
    assert [answer.status for answer in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]


def test_the_new_application_form_works_by_keyboard_alone(
    browser: Browser, console_url: str
) -> None:
    pages = new_pages(browser, console_url)
    sign_in(pages, "dev-clerk")
    page = pages.open("/clerk/applications/new?point=HUAIYIN")
    wanted = {
        f"f-{name.replace('.', '-')}": value
        for name, value in _adult(travel_permit("HK")).items()
        if name != "acceptance_point" and name != "applicant.sex" and name != "applicant.region"
    }
    typed: set[str] = set()
    for _ in range(120):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.id")
        if focused in wanted and focused not in typed:
            page.keyboard.press("Control+A")
            page.keyboard.type(wanted[focused])
            typed.add(focused)
        if focused == "submit-application":
            break
    assert typed == set(wanted)
    page.keyboard.press("Enter")
    _application_id(page)
    assert "申请已受理" in page.content()


def test_the_applicant_follows_the_status_in_their_script(
    browser: Browser, console_url: str
) -> None:
    adult = CREATED["adult"]
    pages = new_pages(browser, console_url)
    page = pages.open("/status")
    assert page.get_attribute("html", "lang") == "zh-Hant"
    pages.check("status-form-zh-Hant")
    page.fill("#application_id", adult["id"])
    page.fill("#travel_permit_number", adult["permit"])
    page.click("button[type=submit]")
    result = page.locator("#status-result").inner_text()
    assert "狀態" in result
    assert "歷下分局科院路派出所" in result or "历下分局科院路派出所" in result
    pages.check("status-found-zh-Hant")

    page = pages.open(
        f"/status?lang=en&application_id={adult['id']}&travel_permit_number={adult['permit']}"
    )
    assert page.get_attribute("html", "lang") == "en"
    assert "Legal due date" in page.locator("#status-result").inner_text()
    pages.check("status-found-en")
    pages.open(
        f"/status?lang=zh-Hans&application_id={adult['id']}&travel_permit_number={adult['permit']}"
    )
    pages.check("status-found-zh-Hans")

    unknown = pages.page.goto(
        console_url + f"/status?application_id=nope&travel_permit_number={adult['permit']}"
    )
    assert unknown is not None
    assert unknown.status == 404
    unknown_text = pages.page.locator("main").inner_text()
    pages.check("status-not-found")
    wrong = pages.page.goto(
        console_url + f"/status?application_id={adult['id']}&travel_permit_number=H00000000"
    )
    assert wrong is not None
    assert wrong.status == 404
    assert pages.page.locator("main").inner_text() == unknown_text


def test_an_operator_sees_an_application_at_risk_and_loads_next_year(
    browser: Browser, console_url: str, system: Any
) -> None:
    intake, issuance = _api(system, "intake"), _api(system, "issuance")
    system.stop(["production-centre"])
    try:
        body = application(point="TIANQIAO")
        accepted = intake.post(
            "/api/v1/applications",
            json=body,
            headers={**CLERK, "Idempotency-Key": body["applicant"]["travel_permit_number"]},
        )
        assert accepted.status_code == 201, accepted.text
        waiting = accepted.json()
        calendar = WorkingDayCalendar()
        accepted_on = date.fromisoformat(waiting["accepted_on"])
        due = date.fromisoformat(waiting["due_date"])
        offset = next(
            days
            for days in range(1, 60)
            if calendar.working_days_between(accepted_on + timedelta(days=days), due) <= 3
        )
        for service in (intake, issuance):
            moved = service.put("/api/v1/dev/clock", json={"offset_days": offset}, headers=OPS)
            assert moved.status_code == 200, moved.text

        pages = new_pages(browser, console_url)
        sign_in(pages, "dev-ops")

        def at_risk() -> bool:
            page = pages.open("/ops")
            row = page.locator("#point-tallies tr[data-point=TIANQIAO] td").nth(1)
            return row.inner_text().strip() not in ("", "0")

        dead_key = f"dead-{secrets.token_hex(6)}"
        _dead_letter(system, dead_key)
        _wait(at_risk, timeout=300)
        assert waiting["id"][:8] in pages.page.locator("#nearest").inner_text()
        _wait(lambda: dead_key in pages.open("/ops").locator("#dead-letters").inner_text())
        assert "死信主题现存" in pages.page.locator("#dead-letter-total").inner_text()
        assert "invalid permits.sla" not in pages.page.content()
        pages.check("ops-overview")

        page = pages.open(f"/ops/applications/{waiting['id']}")
        page.fill("#working-days", "11")
        page.fill("#reason", "交通不便：山区道路中断")
        page.click("#extension-form button[type=submit]")
        refusal = page.locator("#working-days-error")
        assert "extension_too_long" in refusal.inner_text()
        assert "延长时限累计不得超过 10 个工作日" in refusal.inner_text()
        assert "at most" not in refusal.inner_text()
        assert page.get_attribute("#working-days", "aria-invalid") == "true"
        assert page.input_value("#reason") == "交通不便：山区道路中断"
        pages.check("ops-extension-refused")
        page.fill("#working-days", "2")
        page.click("#extension-form button[type=submit]")
        page.wait_for_url("**done=extended")
        facts = page.locator("dl.facts").first.inner_text()
        assert "延长 2 个工作日" in facts
        assert waiting["due_date"] not in facts
        pages.check("ops-application-extended")
        page = pages.open("/ops/agencies")
        assert page.locator("#agency-feeds tr[data-agency=hotel]").count() == 1
        pages.check("ops-agency-feeds")

        late = application(point="LIXIA")
        accepted_late = intake.post(
            "/api/v1/applications",
            json=late,
            headers={**CLERK, "Idempotency-Key": late["applicant"]["travel_permit_number"]},
        )
        assert accepted_late.status_code == 201, accepted_late.text

        page = pages.open("/ops/calendar")
        assert page.locator(f"#calendar-years tr[data-year='{NEXT_YEAR}']").count() == 1
        pages.check("ops-calendar")
        page.fill("#year", str(NEXT_YEAR))
        page.fill("#holidays", "\n".join([f"{NEXT_YEAR}-01-{d:02d}" for d in (1, 4, 5, 6, 7, 8)]))
        page.click("button[value=preview]")
        preview = page.locator("#preview").inner_text()
        assert "个办结日期变动" in preview
        assert "将有 0 个" not in preview
        pages.check("ops-calendar-preview")

        page.fill("#holidays", "\n".join(NEXT_YEAR_ARRANGEMENT["holidays"]))
        page.fill("#workdays", "\n".join(NEXT_YEAR_ARRANGEMENT["workdays"]))
        page.click("button[value=preview]")
        page.click("button[value=load]")
        page.wait_for_url(f"**loaded={NEXT_YEAR}")
        row = page.locator(f"#calendar-years tr[data-year='{NEXT_YEAR}']").inner_text()
        assert "正式安排" in row
        assert "已载入" in row
    finally:
        for service in (intake, issuance):
            service.put("/api/v1/dev/clock", json={"offset_days": 0}, headers=OPS)
        system.restart("production-centre")
        intake.close()
        issuance.close()


def test_bad_input_gives_pages_never_stack_traces(
    browser: Browser, console_url: str, system: Any
) -> None:
    pages = new_pages(browser, console_url)
    page = sign_in(pages, "dev-clerk")
    page.wait_for_url("**/clerk")
    page.evaluate(
        "() => { document.querySelector('.signout input[name=csrf_token]').value = 'forged'; }"
    )
    with page.expect_response(lambda r: r.url.endswith("/signout")) as forged:
        page.click(".signout button")
    assert forged.value.status == 403
    assert "表单已失效" in page.content()
    pages.check("csrf-refused")
    page = pages.open("/clerk")
    page.evaluate("() => document.querySelector('.signout input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.url.endswith("/signout")) as missing:
        page.click(".signout button")
    assert missing.value.status == 403

    lixia = new_pages(browser, console_url)
    sign_in(lixia, "e2e-clerk-lixia")
    other = lixia.page.goto(console_url + f"/clerk/applications/{CREATED['minor']['id']}")
    assert other is not None
    assert other.status == 403
    assert "SHIZHONG" in lixia.page.content()
    lixia.check("forbidden-other-point")
    own = lixia.page.goto(console_url + f"/clerk/applications/{CREATED['adult']['id']}")
    assert own is not None
    assert own.status == 200

    system.stop(["intake"])
    try:
        down = pages.page.goto(console_url + "/clerk")
        assert down is not None
        assert down.status == 503
        assert "服务暂时不可用" in pages.page.content()
        assert "Traceback" not in pages.page.content()
        pages.check("service-down")
    finally:
        system.restart("intake")


def test_the_clerk_hands_the_card_over_and_reports_it_lost(
    browser: Browser, console_url: str, system: Any
) -> None:
    adult_id = CREATED["adult"]["id"]
    pages = new_pages(browser, console_url)
    sign_in(pages, "dev-clerk")
    with _api(system, "intake") as intake:
        _wait(
            timeout=500,
            probe=lambda: (
                (card := intake.get(f"/api/v1/applications/{adult_id}", headers=CLERK).json())[
                    "status"
                ]
                == "ready"
                and (card.get("card") or {}).get("valid_from")
            ),
        )
    posted_id = CREATED["posted"]["id"]
    with _api(system, "intake") as intake:
        _wait(
            timeout=300,
            probe=lambda: (
                intake.get(f"/api/v1/applications/{posted_id}", headers=CLERK).json()["status"]
                == "ready"
            ),
        )
    page = pages.open(f"/clerk/applications/{posted_id}")
    assert "邮寄" in page.locator("dl.facts").first.inner_text()
    assert page.locator("text=确认已领取").count() == 0
    page.fill("#dispatch-tracking-number", "")
    page.click("#dispatch-form button[type=submit]")
    refusal = page.locator("#dispatch-tracking-number-error")
    assert "必须填写" in refusal.inner_text()
    assert "string_too_short" in refusal.inner_text()
    assert page.get_attribute("#dispatch-tracking-number", "aria-invalid") == "true"
    pages.check("clerk-dispatch-refused")
    page.fill("#dispatch-tracking-number", "EA123456789CN")
    page.click("#dispatch-form button[type=submit]")
    page.wait_for_url("**done=ok")
    facts = page.locator("dl.facts").first.inner_text()
    assert "已寄出" in facts
    assert "EA123456789CN" in facts
    pages.check("clerk-application-dispatched")

    page = pages.open(f"/clerk/applications/{adult_id}")
    assert page.locator("text=挂失此证").count() == 0, "a card still at the counter is not lost"
    page.click("text=确认已领取")
    page.wait_for_url("**done=ok")
    assert "已领取" in page.locator("dl.facts").first.inner_text()
    with page.expect_navigation():
        page.click("text=挂失此证")
    assert "操作已完成" in page.locator("main").inner_text()
    pages.check("clerk-application-collected")
