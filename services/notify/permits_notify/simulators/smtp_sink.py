"""An SMTP server that keeps what it receives, so tests and developers can read the mail.

Received messages are listed over HTTP (`GET /messages?to=...`) and, when asked, appended to a
mailbox file (one JSON object per line). Recipients whose local part starts with `bounce`
are refused with 550, to exercise permanent email failures.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI


@dataclass
class MailSink:
    """The aiosmtpd handler: parses and stores every accepted message."""

    mailbox: Path | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _options: Any
    ) -> str:
        """Accept every recipient except the ones meant to bounce."""
        if address.split("@", 1)[0].lower().startswith("bounce"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        """Keep the message; readable body text, not the MIME encoding."""
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        body_part = parsed.get_body(preferencelist=("plain",))
        body = body_part.get_content() if body_part is not None else ""
        stored = {
            "id": len(self.messages) + 1,
            "mail_from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(parsed.get("Subject", "")),
            "body": body,
            "message_id": str(parsed.get("Message-ID", "")),
            "reference": str(parsed.get("X-Permits-Reference", "")),
            "received_at": datetime.now(UTC).isoformat(),
        }
        self.messages.append(stored)
        if self.mailbox is not None:
            line = json.dumps(stored, ensure_ascii=False) + "\n"
            await asyncio.to_thread(_append, self.mailbox, line)
        return "250 Message accepted"

    def find(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages, optionally only those to one address."""
        if to is None:
            return list(self.messages)
        return [m for m in self.messages if to.lower() in (a.lower() for a in m["to"])]


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as mailbox:
        mailbox.write(line)


@dataclass
class RunningSmtpSink:
    """A started sink: its port, its handler and the server to close."""

    server: asyncio.Server
    sink: MailSink
    port: int

    async def close(self) -> None:
        """Stop accepting connections."""
        self.server.close()
        await self.server.wait_closed()


async def start_smtp_sink(
    host: str = "127.0.0.1", port: int = 8025, mailbox: Path | None = None
) -> RunningSmtpSink:
    """Serve SMTP in the running event loop (port 0 picks a free port)."""
    sink = MailSink(mailbox=mailbox)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="permits-smtp-sink", enable_SMTPUTF8=True), host, port
    )
    bound = server.sockets[0].getsockname()[1]
    return RunningSmtpSink(server=server, sink=sink, port=int(bound))


def create_mailbox_app(sink: MailSink) -> FastAPI:
    """The sink's HTTP listing (no token: a local test tool bound to 127.0.0.1)."""
    app = FastAPI(title="SMTP sink (local)")

    @app.get("/messages")
    async def list_messages(to: str | None = None) -> dict[str, Any]:
        return {"items": sink.find(to)}

    @app.delete("/messages")
    async def clear_messages() -> dict[str, int]:
        count = len(sink.messages)
        sink.messages.clear()
        return {"deleted": count}

    return app
