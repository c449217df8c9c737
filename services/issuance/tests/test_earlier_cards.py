"""Importing the earlier system's cards: the line rules, then whole files against the real
store and broker: good lines in, bad lines out with their codes, nothing twice, resumable."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from permits_common.domain.permit_number import generate, nth_sequence
from permits_common.domain.regions import Region, Sex
from permits_common.events.topics import TopicSpec
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.mongo import mongo_client
from permits_common.settings import CommonSettings
from permits_issuance.adapters.earlier_cards_store import EarlierCardsStore
from permits_issuance.adapters.store import IssuanceStore
from permits_issuance.domain.earlier_cards import LineRejectedError, parse_line
from permits_issuance.domain.numbering import counter_key
from permits_issuance.service.earlier_cards import CardImport, rejects_path
from permits_issuance.service.numbers import PERSIST_EVERY, CounterHints, allocate_number
from permits_issuance.simulator.earlier_export import cards, write

GOOD = next(cards(1, seed=3))


def line(**changes: Any) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def code_of(raw: bytes) -> str:
    with pytest.raises(LineRejectedError) as refused:
        parse_line(raw)
    return refused.value.code


def test_a_good_line_is_a_card() -> None:
    card = parse_line(line())
    assert card.card_number == GOOD["card_number"]
    assert card.acceptance_point


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"card_number": GOOD["card_number"][:17] + "Y"}, "card_number_invalid"),
        ({"sex": "F" if GOOD["sex"] == "M" else "M"}, "card_number_invalid"),
        ({"birth_date": "1939-01-01"}, "card_number_invalid"),
        ({"region": "MO" if GOOD["region"] != "MO" else "HK"}, "card_number_invalid"),
        ({"valid_until": "2099-01-01"}, "invalid_record"),
        ({"valid_from": "2017-01-01", "valid_until": "2022-01-01"}, "invalid_record"),
        ({"status": "expired"}, "invalid_record"),
        ({"issue_count": 0}, "invalid_record"),
        ({"issuing_authority": "somewhere else"}, "invalid_record"),
        ({"name": ""}, "invalid_record"),
    ],
)
def test_bad_lines_are_refused_with_their_code(changes: dict[str, Any], code: str) -> None:
    assert code_of(line(**changes)) == code


def test_a_line_that_is_not_json_is_an_invalid_record() -> None:
    assert code_of(b'{"card_number": "8100') == "invalid_record"


@pytest_asyncio.fixture
async def importer(infrastructure: dict[str, str]) -> AsyncIterator[tuple[CardImport, Any]]:
    settings = CommonSettings()
    client = mongo_client(settings)
    uid = uuid.uuid4().hex[:10]
    name = f"issuance_import_{uid}"
    cards_topic = f"permits.cards.import-test-{uid}"
    await ensure_topics(settings, [TopicSpec(cards_topic, "card number", "test", 2)])
    publisher = EventPublisher(settings, "/permits/import-test")
    await publisher.start()
    store = IssuanceStore(client[name])
    await store.ensure_indexes()
    yield CardImport(EarlierCardsStore(store), publisher, cards_topic), store
    await publisher.stop()
    await client.drop_database(name)
    await client.close()


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_a_file_is_imported_once_with_rejects_and_counters_learned(
    importer: tuple[CardImport, IssuanceStore], tmp_path: Path
) -> None:
    run, store = importer
    path = tmp_path / "cards.jsonl"
    seed = int(uuid.uuid4().int % 10_000)
    while True:  # the last line copies the first, which must be a card written intact
        broken = write(path, 600, bad=0.05, seed=seed)
        first_line = path.read_bytes().split(b"\n", 1)[0]
        if first_line == orjson.dumps(next(iter(cards(600, seed)))):
            break
        seed += 1
    with path.open("ab") as out:
        first = orjson.loads(first_line)
        out.write(orjson.dumps({**first, "name": "另一个人"}) + b"\n")
    summary = await run.run(path)
    assert summary.rejected >= broken + 1
    assert summary.imported + summary.already_present + summary.rejected == 601
    rejects = [orjson.loads(raw) for raw in rejects_path(path).read_bytes().splitlines()]
    assert len(rejects) == summary.rejected
    assert {r["code"] for r in rejects} <= {
        "invalid_record",
        "card_number_invalid",
        "conflicting_record",
    }
    assert rejects[-1] == {
        "line": 601,
        "code": "conflicting_record",
        "message": rejects[-1]["message"],
    }
    assert await store.database["imported_cards"].count_documents({}) == summary.imported
    again = await run.run(path)
    assert again.imported == 0
    assert again.already_present == summary.imported + summary.already_present
    assert again.rejected == summary.rejected
    assert again.resumed_at == 602
    reordered = b"\n".join(reversed(path.read_bytes().splitlines()[:-1])) + b"\n"
    path.with_name("copy.jsonl").write_bytes(reordered)
    copy = await run.run(path.with_name("copy.jsonl"))
    assert copy.imported == 0
    assert copy.already_present == summary.imported + summary.already_present
    assert copy.rejected == summary.rejected - 1
    assert await store.database["imported_cards"].count_documents({}) == summary.imported
    card = parse_line(path.read_bytes().splitlines()[0])
    number = await allocate_number(
        store,
        CounterHints(),
        application_id="new-application",
        region=Region(card.region),
        birth_date=card.birth_date,
        sex=Sex(card.sex),
        now=datetime.now(UTC),
    )
    assert number != card.card_number
    holder = await store.holder(card.person)
    assert holder is not None
    assert holder.card_number == card.card_number
    assert await store.mark_seen([card.person]) == set(), "an imported holder is marked seen"


class ImportInterruptedError(Exception):
    """Stands for Ctrl-C after some batches."""


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_an_interrupted_import_resumes_where_it_stopped(
    importer: tuple[CardImport, IssuanceStore], tmp_path: Path
) -> None:
    run, store = importer
    path = tmp_path / "big.jsonl"
    write(path, 2500, bad=0.01, seed=int(uuid.uuid4().int % 10_000))

    def stop_after_first_batch(_offset: int, summary: Any) -> None:
        raise ImportInterruptedError

    with pytest.raises(ImportInterruptedError):
        await run.run(path, stop_after_first_batch)
    rest = await run.run(path)
    assert rest.resumed_at == 1001
    assert rest.imported + rest.already_present + rest.rejected == 2500
    rejects = [orjson.loads(raw)["line"] for raw in rejects_path(path).read_bytes().splitlines()]
    assert len(rejects) == len(set(rejects)) == rest.rejected
    assert await store.database["imported_cards"].count_documents({}) == rest.imported


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_counters_learn_long_rows_of_imported_numbers_and_claims_keep_the_rest(
    importer: tuple[CardImport, IssuanceStore], tmp_path: Path
) -> None:
    """A counter is written past a row of at least `PERSIST_EVERY` consecutive imported
    indexes; scattered numbers get none, and issuance still never gives one of them out."""
    run, store = importer
    birth, sex = date(1980, 5, 17), Sex.FEMALE
    row = range(PERSIST_EVERY + 2)
    scattered = [40, 43, 47]
    lines = [
        line(
            card_number=generate(Region.HK, birth, nth_sequence(sex, index)).value,
            sex=sex.value,
            birth_date=birth.isoformat(),
            region="HK",
            travel_permit_number=f"H{index + 10:08d}",
            status="active",
        )
        for index in [*row, *scattered]
    ]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = await run.run(path)
    assert summary.imported == len(lines)
    assert await store.stored_counter(counter_key(Region.HK, birth, sex)) == len(row)
    other = date(1980, 5, 18)
    lonely = generate(Region.HK, other, nth_sequence(sex, 0)).value
    path.with_name("lonely.jsonl").write_bytes(
        line(
            card_number=lonely,
            sex=sex.value,
            birth_date=other.isoformat(),
            region="HK",
            travel_permit_number="H00000009",
            status="active",
        )
        + b"\n"
    )
    assert (await run.run(path.with_name("lonely.jsonl"))).imported == 1
    assert await store.stored_counter(counter_key(Region.HK, other, sex)) == 0
    number = await allocate_number(
        store,
        CounterHints(),
        application_id="after-the-import",
        region=Region.HK,
        birth_date=other,
        sex=sex,
        now=datetime.now(UTC),
    )
    assert number != lonely
