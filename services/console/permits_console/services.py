"""Calls to the services' public APIs, made with the signed-in user's token.

The console keeps nothing: every page asks the owning service. A service that cannot be reached
or answers 5xx becomes `ServiceDownError` (a page that says so); every other answer goes back to
the route as it is, problem details included, for the page to explain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from permits_common.logs import get_logger

log = get_logger("console")
# httpx logs every URL at INFO; the applicant's look-up carries the travel permit number in it.
logging.getLogger("httpx").setLevel(logging.WARNING)


class ServiceDownError(Exception):
    """A service the page needs did not answer usefully."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


@dataclass(frozen=True, slots=True)
class Answer:
    """A service's answer: status and JSON body (a problem document when status >= 400)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    def field_errors(self) -> dict[str, list[dict[str, str]]]:
        """Refusals by form field (`applicant.birth_date` ...), from the problem's `errors`."""
        found: dict[str, list[dict[str, str]]] = {}
        if isinstance(self.body, dict):
            for error in self.body.get("errors") or []:
                found.setdefault(str(error.get("field", "")), []).append(error)
        return found


class ServiceClient:
    """One service's API over a shared connection pool."""

    def __init__(self, name: str, base_url: str, timeout: float) -> None:
        self.name = name
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request; ServiceDownError when the service is unreachable or fails."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self._client.request(
                method, path, params=params, json=json, headers=sent
            )
        except httpx.HTTPError as exc:
            log.warning("service unreachable", service=self.name, error=type(exc).__name__)
            raise ServiceDownError(self.name) from None
        if response.status_code >= 500:
            log.warning("service failed", service=self.name, status=response.status_code)
            raise ServiceDownError(self.name)
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, body)
