"""Rendering pages and the dependencies every route shares: the session, who is signed in, the
service clients. Errors a route raises become pages here, never a stack trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from permits_common.web.auth import Principal
from permits_console.config import ConsoleSettings
from permits_console.i18n import HTML_LANG, STAFF_LANGUAGE, translator
from permits_console.rate_limit import ClientRateLimit
from permits_console.services import ServiceClient
from permits_console.session import CSRF_FIELD, Session, current

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
JINAN = ZoneInfo("Asia/Shanghai")


def jinan_time(value: object) -> str:
    """An API timestamp (ISO 8601 with offset) as Jinan's wall-clock time, to the minute."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(JINAN).strftime("%Y-%m-%d %H:%M")


TEMPLATES.env.filters["jinan_time"] = jinan_time


class SignInRequiredError(Exception):
    """A staff page was asked for without a signed-in session."""


class ForbiddenError(Exception):
    """The signed-in role may not see this page (or this point's application)."""

    def __init__(self, message_key: str = "forbidden.text", **values: object) -> None:
        super().__init__(message_key)
        self.message_key = message_key
        self.values = values


@dataclass(frozen=True, slots=True)
class Console:
    """What one console process shares across requests."""

    settings: ConsoleSettings
    intake: ServiceClient
    rights: ServiceClient
    status_limit: ClientRateLimit


async def console(request: Request) -> Console:
    """The console's clients and limits (`async`: a plain dependency would run in a thread)."""
    found: Console = request.app.state.console
    return found


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    language: str = STAFF_LANGUAGE,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page in a language, with the session's CSRF token and the signed-in user at hand."""
    session = current(request)
    values = {
        "request": request,
        "t": translator(language),
        "lang": HTML_LANG[language],
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf,
        "principal": session.principal,
        **(context or {}),
    }
    return TEMPLATES.TemplateResponse(
        request, template, values, status_code=status_code, headers=headers
    )


def error_page(
    request: Request,
    status_code: int,
    title_key: str,
    message_key: str,
    *,
    language: str = STAFF_LANGUAGE,
    headers: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
) -> Response:
    """One page for every error: a title, a sentence, a way back."""
    return render(
        request,
        "error.html",
        {"title_key": title_key, "message_key": message_key, "values": values or {}},
        status_code=status_code,
        language=language,
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The signed-in user: their token (to call the services as them) and role."""

    token: str
    principal: Principal


def signed_in(*kinds: str) -> Callable[[Request], Awaitable[SignedIn]]:
    """A dependency admitting a signed-in user of one of the role kinds."""

    async def dependency(request: Request) -> SignedIn:
        session: Session = current(request)
        principal = session.principal
        if session.token is None or principal is None:
            raise SignInRequiredError
        if principal.kind not in kinds:
            raise ForbiddenError()
        return SignedIn(session.token, principal)

    return dependency


async def csrf_checked(request: Request) -> None:
    """Every form post carries the session's CSRF token; anything else is refused (403)."""
    form = await request.form()
    current(request).check_csrf(form.get(CSRF_FIELD))


Clerk = Annotated[SignedIn, Depends(signed_in("clerk"))]
Ops = Annotated[SignedIn, Depends(signed_in("ops"))]
Shared = Annotated[Console, Depends(console)]
CsrfChecked = Depends(csrf_checked)
