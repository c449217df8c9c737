"""Bearer tokens, each with exactly one role: `clerk` (or `clerk:<POINT>`), `ops`, `agency:<key>`.

No token → 401, wrong role → 403. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from permits_common.domain.agencies import Agency
from permits_common.web.problems import ProblemError


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role kind, and the acceptance point or agency it is bound to."""

    kind: str
    scope: str | None = None

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


class TokenAuthority:
    """Maps tokens to principals; built once from settings at start-up."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._principals = {token: parse_role(role) for token, role in tokens.items()}

    def identify(self, token: str) -> Principal | None:
        """The principal behind a token, comparing every known token in constant time."""
        found: Principal | None = None
        for known, principal in self._principals.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        return found


def _authority(request: Request) -> TokenAuthority:
    authority: TokenAuthority = request.app.state.token_authority
    return authority


def require(*kinds: str) -> Callable[..., Principal]:
    """A dependency that admits only the given role kinds (`clerk`, `ops`, `agency`)."""

    def dependency(
        request: Request, authority: Annotated[TokenAuthority, Depends(_authority)]
    ) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(
                401,
                "unauthorized",
                "Authentication required",
                "Send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = authority.identify(token.strip())
        if principal is None:
            raise ProblemError(
                401,
                "unauthorized",
                "Unknown token",
                "The bearer token is not valid",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.kind not in kinds:
            raise ProblemError(
                403,
                "forbidden",
                "Forbidden",
                f"This endpoint needs one of the roles: {', '.join(kinds)}",
            )
        return principal

    return dependency
