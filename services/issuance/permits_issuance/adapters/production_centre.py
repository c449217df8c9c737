"""HTTP client of the card production centre (locally: `python -m permits_issuance.simulator`).

An order is a signed JSON POST; the centre answers 2xx when it takes the order and later calls
back the issuance service with the outcome. Anything else (5xx, refused connection, timeout)
is a failed attempt that the production service retries with backoff.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson

from permits_common.http_client import PartnerClient, PartnerUnreachableError
from permits_issuance.domain.production import SIGNATURE_HEADER, sign


@dataclass(frozen=True, slots=True)
class ProductionRequest:
    """What the centre needs to make one card issue, and where to report back."""

    order_id: str
    attempt: int
    card_number: str
    issue_count: int
    callback_url: str


ORDERS_IN_FLIGHT = 16
"""Orders sent at once, and the connections of the pool: a batch of approvals sends its orders
together, and the centre answers at once, so 16 keep up with hundreds of orders a second."""


class ProductionCentreClient:
    """Sends orders; one pooled HTTP client per process."""

    def __init__(self, base_url: str, secret: bytes, timeout_seconds: float) -> None:
        self._url = f"{base_url.rstrip('/')}/api/v1/orders"
        self._secret = secret
        self._timeout = timeout_seconds
        self._client: PartnerClient | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._client = PartnerClient(timeout=self._timeout, in_flight=ORDERS_IN_FLIGHT)

    async def stop(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def submit(self, request: ProductionRequest) -> str | None:
        """None when the centre took the order, otherwise why it did not."""
        if self._client is None:
            raise RuntimeError("production centre client not started")
        body = orjson.dumps(asdict(request))
        try:
            answer = await self._client.post(
                self._url,
                body,
                {"content-type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)},
            )
        except PartnerUnreachableError as exc:
            return str(exc)[:500]
        if answer.is_success:
            return None
        return f"HTTP {answer.status}"
