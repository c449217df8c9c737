"""POSTs signed events to agency endpoints."""

from __future__ import annotations

import httpx

from permits_common.events.envelope import CONTENT_TYPE
from permits_common.http_client import record_missing_sniffio
from permits_rights.domain.signature import SIGNATURE_HEADER, sign


class WebhookFailedError(Exception):
    """The endpoint did not accept the event (non-2xx, timeout or connection error)."""


class WebhookClient:
    """One pooled HTTP client for every agency; timeouts bound how long a dead endpoint holds a
    delivery slot."""

    def __init__(self, timeout_seconds: float) -> None:
        record_missing_sniffio()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )

    async def close(self) -> None:
        """Release connections."""
        await self._client.aclose()

    async def post(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        """Deliver one event; raises WebhookFailedError with a short reason otherwise."""
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: sign(body, secret),
            "X-Permits-Event-Id": event_id,
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise WebhookFailedError("timeout") from None
        except httpx.HTTPError as exc:
            raise WebhookFailedError(type(exc).__name__) from None
        if not 200 <= response.status_code < 300:
            raise WebhookFailedError(f"HTTP {response.status_code}")
