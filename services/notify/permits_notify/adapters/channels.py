"""The two ways to reach an applicant: email over SMTP and SMS through an HTTP gateway.

Both raise `SendError` telling temporary failures (retry later) from permanent ones (this
channel will never work for this recipient: fall back to the other one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib
import orjson

from permits_common.http_client import PartnerAnswer, PartnerClient, PartnerUnreachableError
from permits_notify.adapters.templates import RenderedMessage
from permits_notify.config import NotifySettings


class SendError(Exception):
    """A send that did not work; `permanent` decides between retry and fallback."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What the provider answered: its message id, and whether it already confirms delivery."""

    provider_id: str
    delivered: bool = False


class Sender(Protocol):
    """One channel. `reference` is the delivery id: providers use it to drop repeats."""

    async def send(self, to: str, message: RenderedMessage, reference: str) -> SendReceipt:
        """Hand the message over, or raise SendError."""
        ...


def message_id_for(reference: str, domain: str) -> str:
    """A Message-ID derived from the delivery id, so a resent email is recognisably the same."""
    digest = hashlib.sha256(reference.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class SmtpSender:
    """Email through an SMTP server (aiosmtpd sink locally, the city's relay in production)."""

    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings

    async def send(self, to: str, message: RenderedMessage, reference: str) -> SendReceipt:
        """Send one plain-text email; SMTP 5xx replies are permanent, 4xx and outages are not."""
        settings = self._settings
        email = EmailMessage()
        email["From"] = settings.smtp_from
        email["To"] = to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False)
        domain = settings.smtp_from.partition("@")[2] or "permits.local"
        email["Message-ID"] = message_id_for(reference, domain)
        email["X-Permits-Reference"] = reference
        email.set_content(message.body, charset="utf-8")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            raise SendError(
                f"recipient refused ({codes})", permanent=all(c >= 500 for c in codes)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"SMTP {exc.code}", permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"SMTP unavailable: {type(exc).__name__}", permanent=False) from None
        return SendReceipt(provider_id=email["Message-ID"])


_TEMPORARY_HTTP = frozenset({408, 425, 429})
SMS_IN_FLIGHT = 8
"""SMS requests at once, and the connections of the pool. Eight keep up with several hundred
SMS a second while the gateway answers within 20 ms; the recipients a pass sends to
concurrently wait for a slot."""


class SmsGatewaySender:
    """SMS through the gateway's HTTP API (the local simulator speaks the same API)."""

    def __init__(
        self,
        settings: NotifySettings,
        client: PartnerClient | None = None,
        *,
        in_flight: int = SMS_IN_FLIGHT,
    ) -> None:
        self._settings = settings
        self._client = client or PartnerClient(
            timeout=settings.sms_timeout_seconds, in_flight=in_flight
        )

    async def close(self) -> None:
        """Release the connection pool."""
        await self._client.close()

    async def send(self, to: str, message: RenderedMessage, reference: str) -> SendReceipt:
        """POST one SMS; 4xx answers are permanent (bad number), 5xx and outages temporary."""
        key = self._settings.sms_api_key.get_secret_value()
        try:
            answer = await self._client.post(
                self._settings.sms_url,
                orjson.dumps({"to": to, "text": message.body, "reference": reference}),
                {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {key}",
                    "Idempotency-Key": reference,
                },
            )
        except PartnerUnreachableError as exc:
            raise SendError(f"gateway unreachable: {exc.cause_name}", permanent=False) from None
        if answer.status >= 500 or answer.status in _TEMPORARY_HTTP:
            raise SendError(f"gateway {answer.status}", permanent=False)
        if answer.status >= 400:
            code = _error_code(answer)
            raise SendError(f"gateway {answer.status} {code}", permanent=True)
        body = orjson.loads(answer.body)
        return SendReceipt(
            provider_id=str(body.get("id", "")), delivered=body.get("status") == "delivered"
        )


def _error_code(answer: PartnerAnswer) -> str:
    try:
        return str(orjson.loads(answer.body).get("code", ""))
    except (ValueError, AttributeError):
        return ""
