"""The console without the services: sessions, CSRF, the service-down page, the rate limit,
catalogues and the form mapping."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from permits_common.settings import DevelopmentSecretsInProductionError
from permits_console.config import ConsoleSettings
from permits_console.forms import (
    application_body,
    errors_by_field,
    form_values,
    refusals_of,
    split_refusals,
)
from permits_console.i18n import catalogue, translator
from permits_console.main import build_app, server_config
from permits_console.rate_limit import ClientRateLimit
from permits_console.services import Answer
from permits_console.session import COOKIE_NAME
from permits_console.web import TEMPLATES, jinan_time


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def console() -> TestClient:
    """A console whose intake is down (nothing listens on its port)."""
    settings = ConsoleSettings(
        env="test",
        intake_url=f"http://127.0.0.1:{_closed_port()}",
        status_lookups_per_minute=1,
        status_lookup_burst=3,
    )
    return TestClient(build_app(settings), follow_redirects=False)


def _csrf(client: TestClient, path: str = "/signin") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_sign_in_sets_a_signed_httponly_strict_cookie(console: TestClient) -> None:
    token = _csrf(console)
    cookie = console.cookies.get(COOKIE_NAME)
    assert cookie
    signed = console.post("/signin", data={"csrf_token": token, "token": "dev-ops"})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ops"
    header = signed.headers["set-cookie"]
    assert "HttpOnly" in header
    assert "SameSite=strict" in header


def test_unknown_token_and_agency_token_cannot_sign_in(console: TestClient) -> None:
    token = _csrf(console)
    unknown = console.post("/signin", data={"csrf_token": token, "token": "guess"})
    assert unknown.status_code == 401
    assert "令牌无效" in unknown.text
    agency = console.post("/signin", data={"csrf_token": token, "token": "dev-agency-hotel"})
    assert agency.status_code == 401
    assert "仅限受理民警和值班人员" in agency.text


def test_forms_without_or_with_a_forged_csrf_token_are_refused(console: TestClient) -> None:
    _csrf(console)
    missing = console.post("/signin", data={"token": "dev-ops"})
    assert missing.status_code == 403
    assert "表单已失效" in missing.text
    forged = console.post("/signin", data={"token": "dev-ops", "csrf_token": "forged"})
    assert forged.status_code == 403


def test_a_tampered_cookie_is_an_anonymous_session(console: TestClient) -> None:
    token = _csrf(console)
    console.post("/signin", data={"csrf_token": token, "token": "dev-ops"})
    console.cookies.set(COOKIE_NAME, console.cookies[COOKIE_NAME] + "x")
    assert console.get("/ops").headers["location"].startswith("/signin?next=")


def test_staff_pages_need_sign_in_and_the_right_role(console: TestClient) -> None:
    assert console.get("/clerk").status_code == 303
    token = _csrf(console)
    console.post("/signin", data={"csrf_token": token, "token": "dev-ops"})
    forbidden = console.get("/clerk/applications/new")
    assert forbidden.status_code == 403
    assert "无权访问" in forbidden.text


def test_a_service_down_is_a_page_that_says_so(console: TestClient) -> None:
    token = _csrf(console)
    console.post("/signin", data={"csrf_token": token, "token": "dev-clerk"})
    page = console.get("/clerk")
    assert page.status_code == 503
    assert "服务暂时不可用" in page.text
    assert "Traceback" not in page.text
    applicant = console.get("/status", params={"application_id": "x", "travel_permit_number": "y"})
    assert applicant.status_code == 503
    assert "服務暫時無法使用" in applicant.text


def test_status_lookups_are_rate_limited_per_client(console: TestClient) -> None:
    query = {"application_id": "a", "travel_permit_number": "H1", "lang": "en"}
    answers = [console.get("/status", params=query).status_code for _ in range(4)]
    assert answers == [503, 503, 503, 429]
    limited = console.get("/status", params=query)
    assert "Too many look-ups" in limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert console.get("/status").status_code == 200


@pytest.fixture
def served_console(request: pytest.FixtureRequest) -> Iterator[str]:
    """The console served by uvicorn as `run()` serves it; the parameter is its trusted proxies."""
    settings = ConsoleSettings(
        env="test",
        console_port=_closed_port(),
        intake_url=f"http://127.0.0.1:{_closed_port()}",
        status_lookups_per_minute=1,
        status_lookup_burst=1,
        console_trusted_proxies=request.param,
    )
    server = uvicorn.Server(server_config(settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.console_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _lookups(url: str, forwarded_for: str, times: int) -> list[int]:
    query = {"application_id": "a", "travel_permit_number": "H1"}
    headers = {"X-Forwarded-For": forwarded_for}
    return [
        httpx.get(f"{url}/status", params=query, headers=headers).status_code for _ in range(times)
    ]


@pytest.mark.parametrize("served_console", ["127.0.0.1"], indirect=True)
def test_behind_a_trusted_proxy_each_applicant_has_a_limit_of_their_own(
    served_console: str,
) -> None:
    assert _lookups(served_console, "203.0.113.7", 2) == [503, 429]
    assert _lookups(served_console, "203.0.113.8", 1) == [503]


@pytest.mark.parametrize("served_console", ["192.0.2.1"], indirect=True)
def test_an_untrusted_sender_cannot_choose_its_address(served_console: str) -> None:
    assert _lookups(served_console, "203.0.113.7", 2) == [503, 429]
    assert _lookups(served_console, "203.0.113.8", 1) == [429]


def test_the_bucket_refills_with_time() -> None:
    now = [0.0]
    limit = ClientRateLimit(60, 2, clock=lambda: now[0])
    assert [limit.allow("a"), limit.allow("a"), limit.allow("a")] == [True, True, False]
    assert limit.allow("b")
    now[0] += 1.0
    assert limit.allow("a")


def test_applicant_keys_exist_in_every_language() -> None:
    applicant_keys = {
        key
        for key in catalogue("zh-Hant")
        if key.split(".")[0] in {"status", "sla", "error", "site", "skip"}
    }
    assert applicant_keys
    for language in ("zh-Hans", "en"):
        assert applicant_keys <= set(catalogue(language)), language
    assert catalogue("zh-Hant")["status.ready"] == "可領取"


def test_production_refuses_the_development_session_secret() -> None:
    with pytest.raises(DevelopmentSecretsInProductionError):
        ConsoleSettings(env="production", tokens={"s3cret": "ops"})


def test_the_form_maps_to_the_api_body_and_refusals_to_inputs() -> None:
    values = form_values(
        {
            "applicant.name": " 陈小明 ",
            "applicant.birth_date": "2020-01-01",
            "guardian.name": "陈大文",
            "biometrics.fingerprint_waiver": "under_6",
        }
    )
    body = application_body(values, "LIXIA")
    assert body["applicant"]["name"] == "陈小明"
    assert body["guardian"] == {"name": "陈大文", "relationship": "", "id_document": ""}
    assert body["biometrics"]["fingerprint_waiver"] == "under_6"
    assert body["acceptance_point"] == "LIXIA"
    assert application_body(form_values({}), "LIXIA")["guardian"] is None
    placed, unplaced = errors_by_field(
        {
            "guardian": [{"code": "guardian_required", "message": "m"}],
            "nowhere": [{"code": "invalid_request", "message": "n"}],
        }
    )
    assert list(placed) == ["guardian.name"]
    assert unplaced == [{"code": "invalid_request", "message": "n"}]


def test_sign_in_returns_only_to_pages_of_this_site(console: TestClient) -> None:
    token = _csrf(console)
    for target, expected in (
        ("/ops/calendar", "/ops/calendar"),
        ("//evil.example", "/ops"),
        ("/\\evil.example", "/ops"),
        ("https://evil.example", "/ops"),
    ):
        answer = console.post(
            "/signin", data={"csrf_token": token, "token": "dev-ops", "next": target}
        )
        assert answer.headers["location"] == expected
        token = _csrf(console)


def test_history_times_show_in_jinan() -> None:
    assert jinan_time("2026-11-29T18:43:31.5+00:00") == "2026-11-30 02:43"
    assert jinan_time("not a time") == "not a time"


def _refusal(code: str, message: str) -> str:
    template = TEMPLATES.env.from_string(
        '{% from "_refusal.html" import refusal with context %}{{ refusal(code, message) }}'
    )
    return template.render(t=translator("zh-Hans"), code=code, message=message)


def test_a_refusal_shows_the_staff_words_and_the_rule_code_not_the_english_message() -> None:
    shown = _refusal("guardian_required", "A guardian is required under 16")
    assert shown == "未满16周岁须由监护人代为申请（规则 guardian_required）"
    assert _refusal("rule_from_the_future", "Some new rule") == (
        "Some new rule（规则 rule_from_the_future）"
    )


def test_an_action_refusal_goes_next_to_its_input_or_above_the_page() -> None:
    too_long = Answer(
        422,
        {
            "code": "extension_too_long",
            "detail": "10 working days were granted already",
            "errors": [
                {"field": "working_days", "code": "extension_too_long", "message": "at most 0"}
            ],
        },
    )
    placed, general = split_refusals(refusals_of(too_long), ("working_days", "reason"))
    assert [error["code"] for error in placed["working_days"]] == ["extension_too_long"]
    assert general == []
    too_late = Answer(409, {"code": "extension_too_late", "detail": "The application is ready"})
    placed, general = split_refusals(refusals_of(too_late), ("working_days", "reason"))
    assert placed == {}
    assert general == [{"code": "extension_too_late", "message": "The application is ready"}]


def test_the_operator_pages_need_the_ops_role(console: TestClient) -> None:
    for path in ("/ops/applications/abc-1", "/ops"):
        assert console.get(path).status_code in (303, 307)
    token = _csrf(console)
    console.post("/signin", data={"csrf_token": token, "token": "dev-clerk"})
    assert console.get("/ops/applications/abc-1").status_code == 403
    forged = console.post(
        "/ops/applications/abc-1/extension", data={"working_days": "2", "reason": "r"}
    )
    assert forged.status_code == 403


def test_the_console_publishes_no_api_document(console: TestClient) -> None:
    """Its routes are pages and form posts: no OpenAPI document, no Swagger page (whose
    scripts its Content-Security-Policy would block anyway)."""
    for path in ("/openapi.json", "/docs", "/redoc"):
        response = console.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
