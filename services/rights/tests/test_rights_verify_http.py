"""The verification route in process: the hand-parsed query of its fast path, and the same
answers, problem documents, roles and audit entries whichever path a request takes (audit on
the real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from starlette.datastructures import QueryParams

from permits_common.domain.card import HolderStatus
from permits_common.events.topics import TopicSpec
from permits_common.kafka import ensure_topics
from permits_rights.config import RightsSettings
from permits_rights.domain.holder import RegisterEntry
from permits_rights.domain.names import normalize_name
from permits_rights.entrypoints.http import plain_verify_query
from permits_rights.main import build_api
from permits_rights.service.runtime import Runtime

ACTIVE, LOST = "810000199001010012", "810000199001010020"
UNTIL = date.today() + timedelta(days=900)


def test_plain_query_reads_the_usual_request() -> None:
    assert plain_verify_query(b"number=A1&name=x") == ("A1", "x", None)
    assert plain_verify_query(b"name=x&number=A1&issue_count=12") == ("A1", "x", 12)
    assert plain_verify_query(b"number=A1&name=x&issue_count=999") == ("A1", "x", 999)


def test_plain_query_decodes_as_starlette_does() -> None:
    chinese = "陈大文".encode().hex("%", 1).upper()
    assert plain_verify_query(f"number=A1&name=%{chinese}".encode()) == ("A1", "陈大文", None)
    assert plain_verify_query(b"number=A1&name=CHAN+TAI%20MAN") == ("A1", "CHAN TAI MAN", None)
    assert plain_verify_query(b"number=A1&number=B2&name=x") == ("B2", "x", None)
    assert plain_verify_query(b"number=%20A1%20&name=x") == (" A1 ", "x", None)
    assert plain_verify_query(b"number=A1&name=x&extra=1") == ("A1", "x", None)


@pytest.mark.parametrize(
    "query",
    [
        b"number=A1&name=x",
        b"number=A1&&name=x&",
        b"number=A%3D1&name=a=b&issue_count=2",
        b"number&name=x",
        b"=&number=A1&name=x",
        b"number=A1&name=%E9%99%88%E5%A4%A7%E6%96%87",
        b"number=A1&name=%E9%99x%88%zz%",
        b"number=A1&name=\xe9\x99\x88",
        b"nu%6Dber=A1&name=x+y%2By",
    ],
)
def test_plain_query_reads_parameters_as_starlette_does(query: bytes) -> None:
    params = QueryParams(query)
    number, name = params.get("number", ""), params.get("name", "")
    issue_count = int(params["issue_count"]) if "issue_count" in params else None
    expected = (number, name, issue_count) if number and name else None
    assert plain_verify_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"name=x",
        b"number=A1",
        b"number=&name=x",
        b"number=A1&name=",
        b"number=" + b"1" * 33 + b"&name=x",
        b"number=A1&name=" + b"x" * 201,
        b"number=A1&name=x&issue_count=",
        b"number=A1&name=x&issue_count=0",
        b"number=A1&name=x&issue_count=1000",
        b"number=A1&name=x&issue_count=007",
        b"number=A1&name=x&issue_count=%2B7",
        b"number=A1&name=x&issue_count=%207",
        b"number=A1&name=x&issue_count=7.0",
        b"number=A1&name=x&issue_count=-1",
        b"number=A1&name=x&issue_count=seven",
        b"number=A1&name=x%00y",
        b"number=A%1F1&name=x",
        b"number=A1&name=x%7F",
    ],
)
def test_plain_query_declines_what_fastapi_must_judge(query: bytes) -> None:
    assert plain_verify_query(query) is None


@pytest.fixture
async def api(infrastructure: dict[str, str], unique: str) -> AsyncIterator[tuple[FastAPI, str]]:
    """The service's app over a two-card register, auditing to a topic of this test."""
    settings = RightsSettings(
        kafka_bootstrap=infrastructure["PERMITS_KAFKA_BOOTSTRAP"],
        mongo_url=infrastructure["PERMITS_MONGO_URL"],
        audit_topic=f"permits.audit.test-{unique}",
    )
    await ensure_topics(settings, [TopicSpec(settings.audit_topic, "subject", "test")])
    runtime = Runtime(settings)
    name, latin = normalize_name("陈大文"), normalize_name("CHAN TAI MAN")
    runtime.index.apply(ACTIVE, RegisterEntry(2, HolderStatus.ACTIVE, name, latin, UNTIL))
    runtime.index.apply(LOST, RegisterEntry(1, HolderStatus.REPORTED_LOST, name, latin, UNTIL))
    runtime.replica.ready.set()
    await runtime.start_publishing()
    try:
        yield build_api(runtime), settings.audit_topic
    finally:
        await runtime.stop_publishing()
        await runtime.mongo.close()


async def _get(app: FastAPI, query: str, agency: str | None = "hotel") -> httpx.Response:
    token = "dev-ops" if agency == "ops" else f"dev-agency-{agency}"
    headers = {"Authorization": f"Bearer {token}"} if agency else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rights") as client:
        return await client.get(f"/api/v1/verify?{query}", headers=headers)


async def _audited(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    entries: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            while len(entries) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    entries += [orjson.loads(record.value)["data"] for record in records]
    finally:
        await consumer.stop()
    return entries


@pytest.mark.integration
async def test_both_paths_give_the_same_answers_and_audit_them(
    api: tuple[FastAPI, str], infrastructure: dict[str, str]
) -> None:
    app, topic = api
    fast = await _get(app, f"number={ACTIVE}&name=陈大文&issue_count=2")
    declared = await _get(app, f"number={ACTIVE}&name=陈大文&issue_count=02")
    assert fast.status_code == declared.status_code == 200
    assert fast.headers["content-type"] == declared.headers["content-type"]
    assert (
        fast.json()
        == declared.json()
        == {
            "valid": True,
            "status": "active",
            "valid_until": UNTIL.isoformat(),
        }
    )
    assert (await _get(app, f"number={ACTIVE}&name=陈大文&issue_count=1")).json() == {
        "valid": False,
        "status": "superseded",
    }
    assert (await _get(app, f"number={LOST.lower()}&name=CHAN+TAI+MAN")).json() == {
        "valid": False,
        "status": "reported_lost",
    }
    entries = await _audited(infrastructure["PERMITS_KAFKA_BOOTSTRAP"], topic, 4)
    assert sorted((e["action"], e["subject_id"], e["outcome"]) for e in entries) == [
        ("verify", ACTIVE, "active"),
        ("verify", ACTIVE, "active"),
        ("verify", ACTIVE, "superseded"),
        ("verify", LOST, "reported_lost"),
    ]
    assert {e["actor"]["role"] for e in entries} == {"agency:hotel"}
    assert {e["agency"] for e in entries} == {"hotel"}


@pytest.mark.integration
async def test_bad_input_gets_fastapis_problem_documents(api: tuple[FastAPI, str]) -> None:
    app, _ = api
    cases = {
        f"number={ACTIVE}": [("name", "missing")],
        f"number={ACTIVE}&name=": [("name", "string_too_short")],
        f"number={'1' * 33}&name=x": [("number", "string_too_long")],
        f"number={ACTIVE}&name=x&issue_count=seven": [("issue_count", "int_parsing")],
        f"number={ACTIVE}&name=x&issue_count=0": [("issue_count", "greater_than_equal")],
        f"number={ACTIVE}&name=x&issue_count=1000": [("issue_count", "less_than_equal")],
        f"number={ACTIVE}&name=x%00y": [("name", "string_pattern_mismatch")],
        "issue_count=": [
            ("number", "missing"),
            ("name", "missing"),
            ("issue_count", "int_parsing"),
        ],
    }
    for query, errors in cases.items():
        answer = await _get(app, query)
        assert answer.status_code == 422, query
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["code"] == "invalid_request"
        assert [(e["field"], e["code"]) for e in body["errors"]] == errors, query


@pytest.mark.integration
async def test_roles_are_checked_on_both_paths(api: tuple[FastAPI, str]) -> None:
    app, _ = api
    usual, unusual = f"number={ACTIVE}&name=x", f"number={ACTIVE}&name=x&issue_count=02"
    for query in (usual, unusual, "name="):
        missing = await _get(app, query, agency=None)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["title"] == "Authentication required"
        assert (await _get(app, query, agency="ops")).status_code == 403
    for query in (usual, unusual):
        aggregate_only = await _get(app, query, agency="hmt_office")
        assert aggregate_only.status_code == 403
        assert aggregate_only.json()["detail"] == "This agency receives aggregate figures only"
