"""The CloudEvents envelope, the event models and the generated contract files."""

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import get_args

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from permits_common.events import topics
from permits_common.events.envelope import (
    PoisonMessageError,
    decode,
    derived_event_id,
    derived_event_ids,
    new_event,
    random_event_id,
)
from permits_common.events.models import (
    EVENT_MODELS,
    CardReportedLost,
    HolderStatusChanged,
    SlaScheduled,
)
from permits_common.events.schemas import main as schemas_main

REPO = Path(__file__).resolve().parents[3]


def _sla() -> SlaScheduled:
    return SlaScheduled(
        application_id="app-1",
        acceptance_point="LIXIA",
        due_date=date(2026, 3, 19),
        accepted_on=date(2026, 2, 13),
        provisional=False,
    )


def test_envelope_round_trip_is_structured_cloudevent() -> None:
    event = new_event(_sla(), source="/permits/issuance")
    body = orjson.loads(event.to_json())
    assert body["specversion"] == "1.0"
    assert body["type"] == "permits.sla.scheduled"
    assert body["subject"] == "app-1"
    assert body["datacontenttype"] == "application/json"
    assert body["time"].endswith("Z")
    assert event.topic == topics.SLA
    assert event.key == b"app-1"
    back = decode(event.to_json())
    assert back.data == event.data
    assert back.id == event.id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "x"}', "missing"),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"permits.nope","time":"2026-01-01T00:00:00Z","subject":"s","data":{}}',
            "unknown event type",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"permits.sla.scheduled","time":"2026-01-01T00:00:00Z","subject":"s","data":{"application_id":"a"}}',
            "invalid permits.sla.scheduled data",
        ),
    ],
)
def test_poison_messages_are_named(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessageError, match=reason):
        decode(raw)


def test_derived_ids_are_stable() -> None:
    assert derived_event_id("app-1", "approved") == derived_event_id("app-1", "approved")
    assert derived_event_id("app-1", "approved") != derived_event_id("app-1", "ready")


@pytest.mark.parametrize(
    "parts", [("app-1", "approved"), ("810000199001010012", 2, "active", "hotel"), ("é", 0)]
)
def test_derived_ids_are_uuid5_of_the_joined_parts(parts: tuple[object, ...]) -> None:
    """Ids derived before the faster derivation stay the same (consumers deduplicate on them)."""
    namespace = uuid.UUID("6f1c1a2e-3b1d-4c55-9a52-2f0d7b0e5a11")
    expected = uuid.uuid5(namespace, "/".join(str(part) for part in parts))
    assert derived_event_id(*parts) == str(expected)


def test_ids_derived_together_are_those_derived_one_by_one() -> None:
    lasts = ["hotel", "finance", "é", ""]
    together = derived_event_ids(("810000199001010012", 2, "active"), lasts)
    assert together == [derived_event_id("810000199001010012", 2, "active", x) for x in lasts]


def test_every_contract_type_has_a_model() -> None:
    expected = {
        "application.accepted",
        "application.rejected",
        "application.approved",
        "application.in_production",
        "application.ready",
        "application.collected",
        "card.issued",
        "card.reported_lost",
        "card.superseded",
        "card.revoked",
        "card.expired",
        "sla.scheduled",
        "sla.rescheduled",
        "sla.at_risk",
        "sla.breached",
        "sla.met",
        "notification.sent",
        "notification.failed",
        "calendar.loaded",
        "holder.status",
    }
    assert {f"permits.{name}" for name in expected} <= set(EVENT_MODELS)


def test_agency_feed_events_go_to_the_agency_topic() -> None:
    from datetime import UTC, datetime

    data = HolderStatusChanged(
        agency="hotel",
        card_number="810000199001010011",
        issue_count=1,
        status="active",
        changed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert new_event(data, source="/permits/rights").topic == "permits.rights.hotel.v1"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = new_event(
        CardReportedLost(card_number="c", issue_count=1, reported_at="2026-01-01T00:00:00Z"),
        source="/x",
    )
    body = orjson.loads(event.to_json())
    body["data"]["added_later"] = 1
    assert decode(orjson.dumps(body)).data == event.data


def test_generated_schemas_and_asyncapi_are_up_to_date() -> None:
    assert schemas_main(["--check", "--docs", str(REPO / "docs")]) == 0


def _datetime_fields(model: type[BaseModel]) -> list[str]:
    """Fields, nested models included, annotated with plain (possibly naive) `datetime`."""
    found = []
    for name, field in model.model_fields.items():
        annotations = get_args(field.annotation) or (field.annotation,)
        for annotation in annotations:
            if annotation is datetime:
                found.append(f"{model.__name__}.{name}")
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found.extend(_datetime_fields(annotation))
    return found


def test_no_event_model_accepts_a_naive_datetime() -> None:
    naive = [field for model in EVENT_MODELS.values() for field in _datetime_fields(model)]
    assert not naive, f"use AwareDatetime (the JSON Schemas say date-time): {naive}"
    with pytest.raises(ValidationError, match="timezone"):
        CardReportedLost(
            card_number="810000199001010017", issue_count=1, reported_at=datetime(2026, 1, 1)
        )


def test_naive_event_times_are_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        new_event(_sla(), source="/permits/issuance", time=datetime(2026, 1, 1, 8))
    body = orjson.loads(new_event(_sla(), source="/permits/issuance").to_json())
    body["time"] = "2026-01-01T08:00:00"
    with pytest.raises(PoisonMessageError, match=r"invalid permits\.sla\.scheduled"):
        decode(orjson.dumps(body))
    body["time"] = "2026-01-01T08:00:00+08:00"
    assert decode(orjson.dumps(body)).time == datetime(2026, 1, 1, 0, tzinfo=UTC)


def test_random_event_ids_are_version_4_uuids_as_uuid4_writes_them() -> None:
    ids = {random_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for written in ids:
        parsed = uuid.UUID(written)
        assert str(parsed) == written
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
