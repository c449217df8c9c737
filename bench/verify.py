"""Verification: requests/s and p99 of GET /api/v1/verify, against a bare FastAPI reference
server and the same service's /healthz, every answer checked.

The register is preloaded the way production fills it: records on the rights service's
compacted changelog topic, which it replays at start. Cards are active, reported lost, revoked
or expired, at issue 1, 2 or 3. Rights runs alone (its Faust agent still consumes
permits.cards.v1 and the backlog there is small); the rate limit is raised so the figure is the
service's, not the token bucket's.

Each presented card's expected answer is worked out here from the register the benchmark wrote
(the contract's rules, not the service's code), and the load generator compares every answer
with it after the clock stops: a wrong answer under load is reported in the result.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.common import (
    KAFKA,
    cleanup,
    make_stack,
    median,
    new_run_id,
    ratio,
    reference_server,
    run_loadgen,
    say,
    stamp,
)
from bench.register import card_numbers, produce_register

AGENCY = {"Authorization": "Bearer dev-agency-hotel"}
NAME, NAME_LATIN, WRONG_NAME = "陈大文", "CHAN TAI MAN", "李小龍"
STATUS_CYCLE = ("active",) * 7 + ("reported_lost", "revoked", "expired")
"""Card i has status STATUS_CYCLE[i % 10]: 70% active."""


@dataclass(frozen=True)
class Card:
    """What the benchmark wrote for one card number."""

    number: str
    issue_count: int
    status: str
    valid_until: date


def build_register(numbers: list[str], valid_until: date) -> list[Card]:
    """The register of the run: status and issue count vary with the index."""
    return [
        Card(number, 1 + i % 3, STATUS_CYCLE[i % len(STATUS_CYCLE)], valid_until)
        for i, number in enumerate(numbers)
    ]


def expected_answer(card: Card | None, name: str, issue_count: int | None) -> dict[str, Any]:
    """contract.md's answer for a presented card, from what the benchmark wrote."""
    if card is None or (issue_count is not None and issue_count > card.issue_count):
        return {"valid": False, "status": "not_found"}
    if name not in (NAME, NAME_LATIN):
        return {"valid": False, "status": "name_mismatch"}
    if issue_count is not None and issue_count < card.issue_count:
        return {"valid": False, "status": "superseded"}
    if card.status == "active":
        return {"valid": True, "status": "active", "valid_until": card.valid_until.isoformat()}
    return {"valid": False, "status": card.status}


def presented(register: list[Card], count: int) -> tuple[list[str], list[list[Any]]]:
    """Paths and expected answers: the card as printed, with the latin name, a wrong name, an
    older or newer issue count, or a number that is not in the register."""
    known = {card.number: card for card in register}
    chosen = random.Random(7)
    paths: list[str] = []
    expected: list[list[Any]] = []
    for i in range(count):
        card: Card | None = register[chosen.randrange(len(register))]
        assert card is not None
        number, name, issue_count = card.number, NAME, None
        kind = i % 10
        if kind == 1:
            name = NAME_LATIN
        elif kind == 2:
            name = WRONG_NAME
        elif kind == 3:
            issue_count = 1
        elif kind == 4:
            issue_count = card.issue_count + 1
        elif kind == 5:
            number = number[:-4] + "0000"
            card = known.get(number)
        query: dict[str, Any] = {"number": number, "name": name}
        if issue_count is not None:
            query["issue_count"] = issue_count
        paths.append("/api/v1/verify?" + urlencode(query))
        expected.append([200, expected_answer(card, name, issue_count)])
    return paths, expected


async def _write_register(topic: str, register: list[Card]) -> None:
    from permits_common.domain.card import HolderStatus
    from permits_rights.domain.holder import RegisterEntry
    from permits_rights.domain.names import normalize_name

    entries = [
        RegisterEntry(
            card.issue_count,
            HolderStatus(card.status),
            normalize_name(NAME),
            normalize_name(NAME_LATIN),
            card.valid_until,
        )
        for card in register
    ]
    await produce_register(topic, [card.number for card in register], date.today(), entries)


async def _create_topic(name: str) -> None:
    """The run's own audit topic: every verification is audited, and the shared trail must not
    receive the benchmark's entries (removed with the run's other topics)."""
    from permits_common.events.topics import TopicSpec
    from permits_common.kafka import ensure_topics
    from permits_common.settings import CommonSettings

    settings = CommonSettings(kafka_bootstrap=KAFKA)
    await ensure_topics(settings, [TopicSpec(name, "subject", "audit of a run")])


def _get(base: str, paths: list[str], requests: int, **extra: Any) -> dict[str, Any]:
    return run_loadgen(
        {"base_url": base, "kind": "get", "paths": paths, "requests": requests, "concurrency": 64}
        | extra
    )


def run(rounds: int = 3, cards: int = 20_000, requests: int = 10_000) -> dict[str, Any]:
    run_id = new_run_id("verify")
    group = f"{run_id}-rights"
    say(f"verify: preloading {cards} cards into {group}-register-changelog")
    register = build_register(card_numbers(cards), date.today() + timedelta(days=900))
    asyncio.run(_write_register(f"{group}-register-changelog", register))
    audit_topic = f"{run_id}-audit"
    asyncio.run(_create_topic(audit_topic))
    stack = make_stack(
        run_id,
        {
            "PERMITS_VERIFY_RATE_PER_SECOND": "1000000",
            "PERMITS_VERIFY_BURST": "1000000",
            "PERMITS_AUDIT_TOPIC": audit_topic,
        },
    )
    reference: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    verify: list[dict[str, Any]] = []
    try:
        stack.start(["rights"])
        base = stack.url("rights")
        paths, expected = presented(register, 4096)
        with reference_server() as bare:
            for number in range(rounds):
                reference.append(_get(bare, ["/healthz"], requests))
                health.append(_get(base, ["/healthz"], requests))
                verify.append(_get(base, paths, requests, headers=AGENCY, expected=expected))
                answers = verify[-1]["answers"]
                say(
                    f"verify round {number + 1}: reference {reference[-1]['rate']}/s, healthz "
                    f"{health[-1]['rate']}/s, verify {verify[-1]['rate']}/s p99 "
                    f"{verify[-1]['p99_ms']} ms {verify[-1]['statuses']}, "
                    f"{answers['wrong']} wrong of {answers['checked']} answers"
                )
                if answers["wrong"]:
                    say(f"wrong answers, e.g. {answers['wrong_examples']}")
    finally:
        stack.stop()
        cleanup(run_id)
    rate = median([r["rate"] for r in verify])
    health_rate = median([r["rate"] for r in health])
    reference_rate = median([r["rate"] for r in reference])
    return {
        "benchmark": "verify",
        **stamp(),
        "setup": {
            "cards": cards,
            "concurrency": 64,
            "requests_per_round": requests,
            "rounds": rounds,
            "register": "70% active, 10% reported_lost, 10% revoked, 10% expired; issue 1-3",
            "mix": "50% as printed (Chinese name), 10% latin name, 10% wrong name, "
            "10% issue_count=1, 10% a newer issue_count, 10% unknown number",
            "client": verify[0]["client"] if verify else None,
        },
        "figure": {
            "requests_per_second": rate,
            "p50_ms": median([r["p50_ms"] for r in verify]),
            "p99_ms": median([r["p99_ms"] for r in verify]),
            "answers_checked": sum(r["answers"]["checked"] for r in verify),
            "answers_wrong": sum(r["answers"]["wrong"] for r in verify),
            "healthz_per_second": health_rate,
            "healthz_p99_ms": median([r["p99_ms"] for r in health]),
            "reference_per_second": reference_rate,
            "reference_p99_ms": median([r["p99_ms"] for r in reference]),
            "ratio_to_healthz": ratio(rate, health_rate),
            "ratio_to_reference": ratio(rate, reference_rate),
            "healthz_ratio_to_reference": ratio(health_rate, reference_rate),
        },
        "target": {
            "requests_per_second": 2000,
            "p99_ms": 20,
            "ratio_to_reference": 0.8,
            "healthz_ratio_to_reference": 0.9,
        },
        "rounds": {"verify": verify, "healthz": health, "reference": reference},
    }
