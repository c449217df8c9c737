"""The console app and its process entry point (port 8000).

Every failure ends on a page: a service down is a 503 page that says so, a forged or missing
CSRF token a 403 page, another point's application a 403 page, anything unexpected a 500 page
without a stack trace (the trace goes to the log at ERROR, without personal data).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from permits_common.logs import configure_logging, get_logger
from permits_common.web.app import create_app
from permits_common.web.auth import TokenAuthority
from permits_console.config import ConsoleSettings
from permits_console.i18n import STAFF_LANGUAGE, applicant_language
from permits_console.rate_limit import ClientRateLimit
from permits_console.routes import applicant, auth, clerk, ops
from permits_console.services import ServiceClient, ServiceDownError
from permits_console.session import CsrfError, SessionCodec
from permits_console.web import Console, ForbiddenError, SignInRequiredError, error_page

log = get_logger("console")
STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _language(request: Request) -> str:
    if request.url.path.startswith("/status"):
        return applicant_language(request.query_params.get("lang"))
    return STAFF_LANGUAGE


def _install_page_handlers(app: FastAPI) -> None:
    """Errors as pages, replacing the JSON problem handlers of the API services."""

    @app.exception_handler(ServiceDownError)
    async def _down(request: Request, exc: ServiceDownError) -> Response:
        return error_page(
            request,
            503,
            "error.unavailable_title",
            "error.unavailable",
            language=_language(request),
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, _exc: CsrfError) -> Response:
        return error_page(request, 403, "csrf.title", "csrf.text")

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> Response:
        return error_page(request, 403, "forbidden.title", exc.message_key, values=exc.values)

    @app.exception_handler(SignInRequiredError)
    async def _signin(request: Request, _exc: SignInRequiredError) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(
                request,
                404,
                "error.not_found_title",
                "error.not_found",
                language=_language(request),
            )
        return error_page(
            request,
            exc.status_code,
            "error.internal_title",
            "error.internal",
            language=_language(request),
        )

    async def _invalid(request: Request, _exc: Exception) -> Response:
        return error_page(
            request, 422, "error.internal_title", "error.internal", language=_language(request)
        )

    app.add_exception_handler(RequestValidationError, _invalid)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, error=type(exc).__name__)
        return error_page(
            request, 500, "error.internal_title", "error.internal", language=_language(request)
        )


def build_app(settings: ConsoleSettings | None = None) -> FastAPI:
    """The console with its service clients; it owns no data, so it starts at once."""
    settings = settings or ConsoleSettings()
    timeout = settings.console_request_timeout_seconds
    intake = ServiceClient("intake", settings.intake_url, timeout)
    rights = ServiceClient("rights", settings.rights_url, timeout)
    codec = SessionCodec(
        settings.console_session_secret.get_secret_value(),
        int(settings.console_session_hours * 3600),
        settings.secure_cookies,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await intake.close()
            await rights.close()

    async def intake_up() -> bool:
        try:
            return (await intake.call("GET", "/healthz")).ok
        except ServiceDownError:
            return False

    app = create_app(
        service="console",
        title="Permits console",
        description="Web pages for clerks, applicants and operators.",
        settings=settings,
        checks={"intake": intake_up},
        lifespan=lifespan,
        api_document=False,
    )
    app.state.token_authority = TokenAuthority(settings.tokens)
    app.state.console = Console(
        settings,
        intake,
        rights,
        ClientRateLimit(settings.status_lookups_per_minute, settings.status_lookup_burst),
    )
    _install_page_handlers(app)

    @app.middleware("http")
    async def _session(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.session = codec.load(request)
        response = await call_next(request)
        codec.store(response, request.state.session)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/clerk", "/ops", "/signin")):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, clerk, applicant, ops):
        app.include_router(module.build_router())
    return app


def server_config(settings: ConsoleSettings) -> uvicorn.Config:
    """How uvicorn serves the console; behind a trusted proxy the client is its X-Forwarded-For."""
    return uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.console_port,
        forwarded_allow_ips=settings.console_trusted_proxies,
        log_level="warning",
        access_log=False,
    )


def run() -> None:
    """`python -m permits_console`: serve on PERMITS_HOST:PERMITS_CONSOLE_PORT."""
    settings = ConsoleSettings()
    configure_logging(settings.log_level, settings.json_logs)
    uvicorn.Server(server_config(settings)).run()
