"""POSTs signed events to agency endpoints."""

from __future__ import annotations

from permits_common.events.envelope import CONTENT_TYPE
from permits_common.http_client import PartnerClient, PartnerUnreachableError
from permits_rights.domain.signature import SIGNATURE_HEADER, sign


class WebhookFailedError(Exception):
    """The endpoint did not accept the event (non-2xx, timeout or connection error)."""


class WebhookClient:
    """The shared partner client, for every agency; its timeouts bound how long a dead endpoint
    holds a delivery slot, and its pool holds one connection per slot (`in_flight`)."""

    def __init__(self, timeout_seconds: float, in_flight: int) -> None:
        self._client = PartnerClient(timeout=timeout_seconds, in_flight=in_flight)

    async def close(self) -> None:
        """Release connections."""
        await self._client.close()

    async def post(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        """Deliver one event; raises WebhookFailedError with a short reason otherwise."""
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: sign(body, secret),
            "X-Permits-Event-Id": event_id,
        }
        try:
            answer = await self._client.post(url, body, headers)
        except PartnerUnreachableError as exc:
            raise WebhookFailedError("timeout" if exc.timed_out else exc.cause_name) from None
        if not answer.is_success:
            raise WebhookFailedError(f"HTTP {answer.status}")
