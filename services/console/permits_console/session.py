"""The signed session cookie and the CSRF token every form carries.

The cookie holds the signed-in token (so the console can call the services as that user), the
role it stands for and a random CSRF token; it is signed (not readable by scripts: `HttpOnly`,
never sent from other sites: `SameSite=Strict`) and expires after a working day. A visitor who
has not signed in gets a session with a CSRF token only, so the sign-in form is protected too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field, replace

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from permits_common.web.auth import Principal, parse_role

COOKIE_NAME = "permits_console"
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """A form arrived without the session's CSRF token (forged, or from an expired page)."""


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: anonymous (CSRF token only) or signed in."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    token: str | None = None
    role: str | None = None
    changed: bool = True

    @property
    def principal(self) -> Principal | None:
        """Who is signed in, if anyone."""
        return parse_role(self.role) if self.role else None

    def signed_in(self, token: str, principal: Principal) -> Session:
        """A fresh session (new CSRF token) for a user who just signed in."""
        return Session(token=token, role=principal.role)

    def signed_out(self) -> Session:
        """An anonymous session with a new CSRF token."""
        return Session()

    def check_csrf(self, submitted: object) -> None:
        """Raise CsrfError unless the submitted token is this session's."""
        if not isinstance(submitted, str) or not hmac.compare_digest(
            submitted.encode(), self.csrf.encode()
        ):
            raise CsrfError


class SessionCodec:
    """Signs and reads the session cookie."""

    def __init__(self, secret: str, max_age_seconds: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="permits-console-session")
        self._max_age = max_age_seconds
        self._secure = secure

    def load(self, request: Request) -> Session:
        """The session the browser sent, or a new anonymous one when missing, tampered with
        or expired."""
        raw = request.cookies.get(COOKIE_NAME)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=self._max_age)
            except BadSignature:
                return Session()
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                return Session(
                    csrf=data["csrf"], token=data.get("token"), role=data.get("role"), changed=False
                )
        return Session()

    def store(self, response: Response, session: Session) -> None:
        """Set the cookie when the session is new or changed."""
        if not session.changed:
            return
        value = self._serializer.dumps(
            {"csrf": session.csrf, "token": session.token, "role": session.role}
        )
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self._max_age,
            httponly=True,
            samesite="strict",
            secure=self._secure,
            path="/",
        )


def current(request: Request) -> Session:
    """The session the middleware loaded for this request."""
    session: Session = request.state.session
    return session


def replace_session(request: Request, session: Session) -> None:
    """Make this the session the response will carry."""
    request.state.session = replace(session, changed=True)
