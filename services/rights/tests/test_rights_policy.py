"""Unit tests of the agency policies: no field an agency may not see ever leaves the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import Histogram

from permits_common.domain.agencies import Agency
from permits_common.domain.card import HolderStatus
from permits_common.events.envelope import decode, new_event
from permits_common.events.models import AuditAccess, AuditActor, HolderStatusChanged
from permits_rights.adapters.policy_file import load_policies
from permits_rights.domain.holder import DETAIL_FIELDS, StatusChange
from permits_rights.domain.policy import ENVELOPE_FIELDS, PolicyError, parse_policies
from permits_rights.service.access_audit import feed_entries
from permits_rights.service.holder_updates import SOURCE, feed_event
from permits_rights.service.json_template import JsonTemplate, hole
from permits_rights.service.metrics import observe_all

POLICIES = load_policies()
FULL_DETAILS: dict[str, Any] = {
    "name": "陈大文",
    "name_latin": "CHAN TAI MAN",
    "sex": "M",
    "birth_date": "1990-01-01",
    "region": "HK",
    "valid_from": "2026-11-01",
    "valid_until": "2031-11-01",
    "issuing_authority": "济南市公安局历下分局",
    "district": "历下区",
    "address": "历下区科院路6号",
}
CHANGE = StatusChange("810000199001010012", 1, HolderStatus.ACTIVE, datetime.now(UTC))


def test_every_agency_has_a_policy() -> None:
    assert set(POLICIES) == set(Agency)
    assert set(FULL_DETAILS) == set(DETAIL_FIELDS)


@pytest.mark.parametrize("agency", [a for a in Agency if POLICIES[a].feed])
def test_feed_event_carries_only_allowed_fields(agency: Agency) -> None:
    policy = POLICIES[agency]
    event = feed_event(policy, CHANGE, FULL_DETAILS)
    body = orjson.loads(event.body)
    assert set(body["data"]) <= policy.fields | ENVELOPE_FIELDS
    for field in set(DETAIL_FIELDS) - policy.fields:
        assert field not in body["data"], f"{agency} received {field}"
    for field in policy.fields - {"card_number", "issue_count", "status"}:
        assert body["data"][field] is not None
    assert body["subject"] == CHANGE.card_number
    assert decode(event.body).id == event.id


@pytest.mark.parametrize("agency", [a for a in Agency if POLICIES[a].feed])
@pytest.mark.parametrize(
    "details",
    [FULL_DETAILS, {**FULL_DETAILS, "name_latin": None, "address": None}, {}],
    ids=["full", "some-empty", "none"],
)
def test_feed_event_is_the_models_json(agency: Agency, details: dict[str, Any]) -> None:
    """Built without the model, byte for byte what the model and envelope would write."""
    policy = POLICIES[agency]
    event = feed_event(policy, CHANGE, details)
    allowed = policy.allowed(
        {
            **details,
            "agency": agency.value,
            "card_number": CHANGE.card_number,
            "issue_count": CHANGE.issue_count,
            "status": CHANGE.status,
            "changed_at": CHANGE.changed_at,
        }
    )
    modelled = new_event(
        HolderStatusChanged(**allowed), source=SOURCE, event_id=event.id, time=CHANGE.changed_at
    )
    assert event.body == modelled.to_json(exclude_none=True)
    assert event.topic == modelled.topic
    assert event.key == modelled.key


def test_hotel_gets_exactly_name_and_validity() -> None:
    body = orjson.loads(feed_event(POLICIES[Agency.HOTEL], CHANGE, FULL_DETAILS).body)
    assert set(body["data"]) == {
        "agency",
        "card_number",
        "issue_count",
        "status",
        "changed_at",
        "name",
        "name_latin",
        "valid_until",
    }


def test_hmt_office_gets_no_per_card_data() -> None:
    policy = POLICIES[Agency.HMT_OFFICE]
    assert not policy.feed
    assert not policy.verify
    assert policy.aggregates
    assert policy.fields == frozenset()


def test_event_ids_are_derived_from_the_fact() -> None:
    first = feed_event(POLICIES[Agency.FINANCE], CHANGE, FULL_DETAILS)
    again = feed_event(POLICIES[Agency.FINANCE], CHANGE, FULL_DETAILS)
    other = feed_event(POLICIES[Agency.HOTEL], CHANGE, FULL_DETAILS)
    assert first.id == again.id
    assert first.body == again.body
    assert first.id != other.id


def test_policy_validation() -> None:
    raw = {"agencies": {a.value: {"fields": [], "feed": False} for a in Agency}}
    assert parse_policies(raw)[Agency.HOTEL].feed is False
    raw["agencies"]["hotel"] = {"fields": ["card_number", "passport"], "feed": True}
    with pytest.raises(PolicyError):
        parse_policies(raw)
    raw["agencies"]["hotel"] = {"fields": ["name"], "feed": True}
    with pytest.raises(PolicyError):
        parse_policies(raw)
    del raw["agencies"]["hotel"]
    with pytest.raises(PolicyError):
        parse_policies(raw)


def test_feed_audit_entries_are_the_models_json_with_ids_from_the_feed() -> None:
    """One entry per feed event, as the trail's model writes it; the same feed event always
    gives the same entry id (a batch handled again repeats no entry)."""
    feed = [feed_event(POLICIES[a], CHANGE, FULL_DETAILS) for a in Agency if POLICIES[a].feed]
    at = datetime.now(UTC)
    entries = feed_entries(feed, at, "audit-topic")
    assert len(entries) == len(feed)
    for event, (topic, key, body) in zip(feed, entries, strict=True):
        modelled = new_event(
            AuditAccess(
                at=at,
                actor=AuditActor(id="system", role="system"),
                service="rights",
                action="feed.published",
                subject_id=CHANGE.card_number,
                outcome=CHANGE.status.value,
                agency=event.agency,
                purpose="holder status feed",
            ),
            source="/permits/rights",
            event_id=orjson.loads(body)["id"],
            time=at,
        )
        assert (topic, key, body) == (
            "audit-topic",
            modelled.key,
            modelled.to_json(exclude_none=True),
        )
    assert entries == feed_entries(feed, at, "audit-topic")
    assert len({orjson.loads(body)["id"] for _, _, body in entries}) == len(entries)


def test_lags_counted_per_batch_are_those_observed_one_by_one() -> None:
    buckets = (0.01, 0.1, 1, 10)
    one_by_one = Histogram("lag_one", "", ["agency"], buckets=buckets, registry=None)
    per_batch = Histogram("lag_batch", "", ["agency"], buckets=buckets, registry=None)
    lags = [0.0, 0.01, 0.02, 0.1, 0.5, 1.0, 9.9, 10.0, 11.0, 600.0]
    agencies = ["hotel", "finance"]
    for agency in agencies:
        for lag in lags:
            one_by_one.labels(agency).observe(lag)
    observe_all(per_batch, agencies, lags[:4])
    observe_all(per_batch, agencies, lags[4:])
    observe_all(per_batch, agencies, [])
    samples = [
        [
            (s.name.removeprefix(h._name), s.labels, s.value)
            for metric in h.collect()
            for s in metric.samples
            if not s.name.endswith("_created")
        ]
        for h in (one_by_one, per_batch)
    ]
    assert samples[0] == samples[1]


def test_a_json_template_names_its_holes_in_order() -> None:
    written = orjson.dumps({"a": hole("x"), "b": "100%", "c": [hole("y"), hole("x")]})
    template = JsonTemplate(written, ("x", "y", "x"))
    assert template.fill(b"1", b'"two"', b"1") == b'{"a":1,"b":"100%","c":["two",1]}'
    with pytest.raises(ValueError, match="not next"):
        JsonTemplate(written, ("y", "x", "x"))
    with pytest.raises(ValueError, match="not named"):
        JsonTemplate(written, ("x", "y"))
