"""Structured logging that keeps personal data out of INFO-and-above logs.

Any event field whose name is a personal-data field is masked before rendering unless the
record is at DEBUG level; code should still avoid passing personal data at all.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import orjson
import structlog

PERSONAL_FIELDS = frozenset(
    {
        "name",
        "name_latin",
        "birth_date",
        "travel_permit_number",
        "phone",
        "email",
        "address",
        "guardian",
        "applicant",
        "residence",
        "id_document",
        "recipient",
        "card_number",
        "number",
        "photo_ref",
        "fingerprints_ref",
    }
)


REQUEST_ID: ContextVar[str | None] = ContextVar("permits_request_id", default=None)
"""The id of the HTTP request being served, set by the shared middleware; every log line written
while serving it carries it. One variable set per request: binding it through structlog's
contextvars costs several times more on the hot path."""


def mask(value: object) -> str:
    """Keep only a hint of a value: length and last two characters."""
    text = str(value)
    return "***" if len(text) <= 4 else f"***{text[-2:]}"


def _drop_personal_data(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if method == "debug":
        return event
    for key in PERSONAL_FIELDS.intersection(event):
        event[key] = mask(event[key])
    return event


def _add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


LIBRARY_LOGGERS = ("aiokafka", "kafka", "faust", "mode", "pymongo", "httpx", "uvicorn.access")


class QuietRepeats(logging.Filter):
    """At most one line per message template and interval from the chatty libraries.

    While the broker is down, aiokafka's producer retries its metadata request without a pause
    and logs the same two errors thousands of times a second (hundreds of megabytes in a few
    minutes); the first line says it all, and the next one that passes says how many were held
    back."""

    def __init__(self, interval_seconds: float = 10.0, prefixes: tuple[str, ...] = LIBRARY_LOGGERS):
        super().__init__()
        self._interval = interval_seconds
        self._prefixes = prefixes
        self._last: dict[tuple[str, object], float] = {}
        self._held_back: Counter[tuple[str, object]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within the interval; otherwise pass, noting what was held back."""
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held_back[key] += 1
            return False
        self._last[key] = now
        held_back = self._held_back.pop(key, 0)
        if held_back and last is not None:
            record.msg = f"{record.msg} [{held_back} more like this in the last {now - last:.0f} s]"
        return True


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Set up structlog (and the standard library logging it sits on) once per process.

    JSON lines (production) are rendered by orjson straight to bytes: with the standard
    library's encoder and a text stream, an access log line cost about 20 µs of CPU, as much
    as a fifth of a verification; now about 14 (`bench.asgi_cost --log-level INFO`). Each line
    is still written out at once, so a crash loses none."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper(), force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietRepeats())
    for noisy in LIBRARY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    renderer: structlog.types.Processor
    logger_factory: Any
    if json:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        logger_factory = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        logger_factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger bound to a component name."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name)
    return logger
