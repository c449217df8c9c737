"""Sign-in with a token (kept in the signed session cookie), sign-out, and the front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from permits_common.web.auth import TokenAuthority
from permits_console.session import current, replace_session
from permits_console.web import CsrfChecked, render

STAFF_KINDS = ("clerk", "ops")


def _home(kind: str) -> str:
    return "/ops" if kind == "ops" else "/clerk"


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def front(request: Request) -> Response:
        principal = current(request).principal
        if principal is not None:
            return RedirectResponse(_home(principal.kind), status_code=303)
        return RedirectResponse("/signin", status_code=303)

    @router.get("/signin")
    async def signin_page(request: Request, next: str | None = None) -> Response:
        return render(request, "signin.html", {"next": _safe_next(next), "error_key": None})

    @router.post("/signin", dependencies=[CsrfChecked])
    async def signin(
        request: Request,
        token: Annotated[str, Form(max_length=500)] = "",
        next: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        authority: TokenAuthority = request.app.state.token_authority
        principal = authority.identify(token.strip()) if token.strip() else None
        error_key = None
        if principal is None:
            error_key = "signin.unknown"
        elif principal.kind not in STAFF_KINDS:
            error_key = "signin.wrong_role"
        if error_key is not None or principal is None:
            return render(
                request,
                "signin.html",
                {"next": _safe_next(next), "error_key": error_key},
                status_code=401,
            )
        replace_session(request, current(request).signed_in(token.strip(), principal))
        return RedirectResponse(_safe_next(next) or _home(principal.kind), status_code=303)

    @router.post("/signout", dependencies=[CsrfChecked])
    async def signout(request: Request) -> Response:
        replace_session(request, current(request).signed_out())
        return RedirectResponse("/signin", status_code=303)

    return router
