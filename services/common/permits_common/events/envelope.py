"""CloudEvents 1.0 in structured JSON mode: the one envelope every event travels in.

Producers build envelopes with `new_event`; consumers turn bytes back into a typed event with
`decode`, which raises `PoisonMessageError` for anything that is not a known, valid event so the
caller can move it to the dead-letter topic and go on.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from permits_common.events.models import EVENT_MODELS, EventData

CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c1a2e-3b1d-4c55-9a52-2f0d7b0e5a11")

DataT = TypeVar("DataT", bound=EventData)


class PoisonMessageError(Exception):
    """A message that can never be processed: not JSON, not a CloudEvent, or an unknown type."""


@dataclass(frozen=True, slots=True)
class Event(Generic[DataT]):
    """A decoded CloudEvent with typed data."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    data: DataT

    @property
    def topic(self) -> str:
        """Where events of this type are published."""
        return self.data.topic()

    @property
    def key(self) -> bytes:
        """The Kafka key is the subject, keeping one application's or card's events in order."""
        return self.subject.encode()

    def to_json(self, *, exclude_none: bool = False) -> bytes:
        """Structured-mode CloudEvent as UTF-8 JSON; `exclude_none` drops empty optional data
        fields entirely (feeds that must not even name a field an agency may not see)."""
        return envelope_json(
            self.id,
            self.source,
            self.type,
            json_time(self.time),
            self.subject,
            self.data.model_dump(mode="json", exclude_none=exclude_none),
        )


def envelope_json(
    event_id: str, source: str, type_: str, time: str, subject: str, data: dict[str, Any]
) -> bytes:
    """The envelope's JSON around data already in JSON form: for producers that build many
    events of one kind at once without a model per event (they are checked against the model
    in their tests). `time` as `json_time` writes it."""
    return orjson.dumps(
        {
            "specversion": SPEC_VERSION,
            "id": event_id,
            "source": source,
            "type": type_,
            "time": time,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
    )


def json_time(moment: datetime) -> str:
    """A time as events carry it (ISO 8601, `Z` for UTC, as the models write it too)."""
    return moment.isoformat().replace("+00:00", "Z")


_EVENT_ID_PREFIX = _EVENT_ID_NAMESPACE.bytes
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


_UUID4_KEPT = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def random_event_id() -> str:
    """A random event id: what `str(uuid.uuid4())` gives (version 4, RFC 4122 variant, from
    `os.urandom`), without the UUID object, for producers that write one per request."""
    h = f"{(int.from_bytes(os.urandom(16)) & _UUID4_KEPT) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derived_event_id(*parts: object) -> str:
    """A deterministic event id: re-emitting the same fact after a crash yields the same id,
    so consumers that deduplicate on id see it once. It is the UUID version 5 of the parts
    (what `uuid.uuid5` gives), written without UUID objects: some producers derive a million."""
    name = "/".join(map(str, parts)).encode()
    return _uuid5_text(hashlib.sha1(_EVENT_ID_PREFIX + name, usedforsecurity=False).hexdigest())


def derived_event_ids(parts: Sequence[object], lasts: Sequence[str]) -> list[str]:
    """`derived_event_id(*parts, last)` for each of `lasts`, hashing the shared parts once
    (one fact announced to a dozen agencies)."""
    shared = hashlib.sha1(
        _EVENT_ID_PREFIX + "/".join(map(str, (*parts, ""))).encode(), usedforsecurity=False
    )
    ids = []
    for last in lasts:
        h = shared.copy()
        h.update(last.encode())
        ids.append(_uuid5_text(h.hexdigest()))
    return ids


def _uuid5_text(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def new_event(
    data: DataT,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Event[DataT]:
    """Wrap event data in an envelope; the subject comes from the data's key field.

    A naive `time` is refused: the envelope's JSON Schema (`date-time`) requires an offset."""
    if time is not None and time.tzinfo is None:
        raise ValueError("event time must carry a UTC offset")
    return Event(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=data.event_type(),
        time=time or datetime.now(UTC),
        subject=data.subject(),
        data=data,
    )


_REQUIRED = ("specversion", "id", "source", "type", "time", "subject", "data")


def decode(raw: bytes | str) -> Event[EventData]:
    """Parse and validate a structured CloudEvent of a known type."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessageError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise PoisonMessageError("not a JSON object")
    missing = [name for name in _REQUIRED if name not in body]
    if missing:
        raise PoisonMessageError(f"not a CloudEvent, missing {', '.join(missing)}")
    if body["specversion"] != SPEC_VERSION:
        raise PoisonMessageError(f"unsupported specversion {body['specversion']!r}")
    model = EVENT_MODELS.get(body["type"])
    if model is None:
        raise PoisonMessageError(f"unknown event type {body['type']!r}")
    try:
        data = model.model_validate(body["data"])
        time = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
        if time.tzinfo is None:
            raise ValueError("time has no UTC offset (RFC 3339 requires one)")
    except (ValidationError, ValueError) as exc:
        raise PoisonMessageError(f"invalid {body['type']} data: {_short(exc)}") from None
    return Event(
        id=str(body["id"]),
        source=str(body["source"]),
        type=str(body["type"]),
        time=time,
        subject=str(body["subject"]),
        data=data,
    )


def _short(exc: Exception) -> str:
    """Validation errors without input values, which may hold personal data."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
    return type(exc).__name__


def to_model(event: Event[EventData], model: type[BaseModel]) -> Any:
    """Narrow a decoded event's data to the expected model (TypeError otherwise)."""
    if not isinstance(event.data, model):
        raise TypeError(f"expected {model.__name__}, got {type(event.data).__name__}")
    return event.data
