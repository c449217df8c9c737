"""`python -m permits_notify.simulators smtp|sms`: run a local mail server or SMS gateway."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import uvicorn

from permits_notify.simulators.sms_gateway import create_sms_gateway_app
from permits_notify.simulators.smtp_sink import create_mailbox_app, start_smtp_sink


async def run_smtp(host: str, port: int, http_port: int, mailbox: Path | None) -> None:
    """SMTP on `port`, the received-mail listing over HTTP on `http_port`."""
    running = await start_smtp_sink(host, port, mailbox)
    print(f"SMTP sink on {host}:{running.port}, messages at http://{host}:{http_port}/messages")
    config = uvicorn.Config(
        create_mailbox_app(running.sink), host=host, port=http_port, log_level="warning"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await running.close()


def main() -> None:
    """Parse the command line and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m permits_notify.simulators")
    sub = parser.add_subparsers(dest="which", required=True)
    smtp = sub.add_parser("smtp", help="SMTP sink that keeps received mail")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, default=8025)
    smtp.add_argument("--http-port", type=int, default=8026)
    smtp.add_argument("--mailbox", type=Path, default=None, help="append JSON lines here")
    sms = sub.add_parser("sms", help="SMS gateway that records messages and fails on request")
    sms.add_argument("--host", default="127.0.0.1")
    sms.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    if args.which == "smtp":
        asyncio.run(run_smtp(args.host, args.port, args.http_port, args.mailbox))
    else:
        api_key = os.environ.get("PERMITS_SMS_API_KEY", "dev-sms-key")
        print(f"SMS gateway simulator on http://{args.host}:{args.port}/api/v1/messages")
        uvicorn.run(
            create_sms_gateway_app(api_key),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )


main()
