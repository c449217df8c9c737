"""Bearer tokens, each with exactly one role: `clerk` (or `clerk:<POINT>`), `ops`, `agency:<key>`.

No token → 401, wrong role → 403. `SharedLayers` (permits_common.web.middleware) finds
the principal once per request; `require` checks its role on each route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from fastapi import Request
from starlette.types import Scope

from permits_common.domain.agencies import Agency
from permits_common.web.problems import ProblemError


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role kind, and the acceptance point or agency it is bound to."""

    kind: str
    scope: str | None = None
    identity: str = field(default="", compare=False)

    @property
    def role(self) -> str:
        """The role as configured, e.g. `clerk:LIXIA` or `agency:hotel`."""
        return self.kind if self.scope is None else f"{self.kind}:{self.scope}"

    @property
    def agency(self) -> Agency | None:
        """The agency of an `agency:<key>` token."""
        return Agency(self.scope) if self.kind == "agency" and self.scope else None

    def may_act_for_point(self, point: str) -> bool:
        """A clerk bound to one acceptance point may act only there; an unbound clerk anywhere."""
        return self.kind == "clerk" and (self.scope is None or self.scope == point)


def parse_role(role: str) -> Principal:
    """`clerk`, `clerk:LIXIA`, `ops` or `agency:<key>`; ValueError for anything else."""
    kind, _, scope = role.partition(":")
    if kind == "clerk":
        return Principal("clerk", scope or None)
    if kind == "ops" and not scope:
        return Principal("ops")
    if kind == "agency" and scope in {agency.value for agency in Agency}:
        return Principal("agency", scope)
    raise ValueError(f"unknown role {role!r}")


def token_identity(token: str) -> str:
    """A stable name for a token that cannot be turned back into it (audit trail, logs)."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenAuthority:
    """Maps tokens to principals; built once from settings at start-up.

    The table is keyed by the SHA-256 of each token, so a lookup costs one hash and one dict
    probe whatever the number of tokens, and how long a probe takes can only tell a caller
    about the digest of what it sent, never about a prefix of a real token.

    `Authorization` values that named a principal are remembered as they were sent (a few per
    client; at most `REMEMBERED_HEADERS`, so a caller cannot grow it), which spares the usual
    request the parsing and the hash (0.6 µs). A dict probe compares the bytes of two values
    only once their salted 64-bit hashes are equal, so its time tells no prefix of a real
    value either; values that name nobody are never remembered.
    """

    REMEMBERED_HEADERS = 256

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._principals = {
            hashlib.sha256(token.encode()).digest(): replace(
                parse_role(role), identity=token_identity(token)
            )
            for token, role in tokens.items()
        }
        self._by_header: dict[bytes, Principal] = {}

    def identify(self, token: str) -> Principal | None:
        """The principal behind a token."""
        return self._principals.get(hashlib.sha256(token.encode()).digest())

    def identify_header(self, authorization: bytes) -> Principal | None:
        """The principal of an `Authorization: Bearer <token>` header value."""
        principal = self._by_header.get(authorization)
        if principal is not None:
            return principal
        scheme, _, token = authorization.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return None
        principal = self._principals.get(hashlib.sha256(token).digest())
        if principal is not None and len(self._by_header) < self.REMEMBERED_HEADERS:
            self._by_header[authorization] = principal
        return principal


def principal_of(scope: Scope) -> Principal | None:
    """The principal `SharedLayers` left in the request's scope (None: no valid token)."""
    principal: Principal | None = scope.get("state", {}).get("principal")
    return principal


class RoleCheck:
    """A dependency that admits only the given role kinds (`clerk`, `ops`, `agency`); the
    OpenAPI document marks every route with one as taking a bearer token (401, 403).

    Asynchronous on purpose: FastAPI runs a plain `def` dependency in a worker thread.
    """

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.allowed = frozenset(kinds)
        self.roles = ", ".join(kinds)

    async def __call__(self, request: Request) -> Principal:
        principal = principal_of(request.scope)
        if principal is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = scheme.lower() == "bearer" and bool(token.strip())
            raise ProblemError(
                401,
                "unauthorized",
                "Unknown token" if presented else "Authentication required",
                "The bearer token is not valid"
                if presented
                else "Send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.kind not in self.allowed:
            raise ProblemError(
                403, "forbidden", "Forbidden", f"This endpoint needs one of the roles: {self.roles}"
            )
        return principal


def require(*kinds: str) -> Callable[[Request], Awaitable[Principal]]:
    """The role check of a route, e.g. `Depends(require("clerk", "ops"))`."""
    return RoleCheck(kinds)
