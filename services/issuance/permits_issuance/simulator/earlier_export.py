"""Realistic export files of the earlier system, for the import's tests and benchmark.

    python -m permits_issuance.simulator.earlier_export OUT.jsonl --cards 100000 --bad 0.01

People of the three regions, born 1940-2015, first cards from September 2018 on; about one in
six has been renewed or reissued (the older issue `superseded`), a few cards are reported lost or
revoked. With `--bad`, that share of lines is broken in the ways a real export breaks: a wrong
check character, a birth date or sex that disagrees with the number, a bad date, an unknown
status, a truncated line.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from permits_common.domain.card import valid_until
from permits_common.domain.permit_number import generate
from permits_common.domain.regions import Region, Sex
from permits_common.reference import acceptance_points

SURNAMES = "陈李张黄何林王吴刘蔡杨郑许谢曾梁"
GIVEN = "大小文明华美玲国志伟嘉欣家豪建雅婷俊杰晓"
LATIN = {"陈": "CHAN", "李": "LEE", "张": "CHEUNG", "黄": "WONG", "何": "HO", "林": "LAM"}


def cards(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`count` card issues, people with one or two issues, numbers unique."""
    rng = random.Random(seed)
    authorities = [point.issuing_authority for point in acceptance_points()]
    used: set[tuple[Region, date, int]] = set()
    made = 0
    person = 0
    while made < count:
        person += 1
        region = rng.choice((Region.HK, Region.HK, Region.MO, Region.TW, Region.TW))
        sex = rng.choice((Sex.MALE, Sex.FEMALE))
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(75 * 365))
        sequence = rng.randrange(1 if sex is Sex.MALE else 2, 1000, 2)
        if (region, birth, sequence) in used:
            continue
        used.add((region, birth, sequence))
        number = generate(region, birth, sequence).value
        permit = {Region.HK: "H", Region.MO: "M", Region.TW: ""}[region] + f"{person:08d}"
        surname = rng.choice(SURNAMES)
        first = date(2018, 9, 1) + timedelta(days=rng.randrange(7 * 365))
        issues = 2 if rng.random() < 0.17 and first < date(2023, 1, 1) else 1
        valid_from = first
        for issue in range(1, issues + 1):
            if made >= count:
                return
            latest = issue == issues
            status = "active"
            if not latest:
                status = "superseded"
            elif rng.random() < 0.02:
                status = rng.choice(("reported_lost", "revoked"))
            yield {
                "card_number": number,
                "issue_count": issue,
                "name": surname + rng.choice(GIVEN) + rng.choice(GIVEN),
                "name_latin": f"{LATIN.get(surname, 'CHAN')} TAI MAN",
                "sex": sex.value,
                "birth_date": birth.isoformat(),
                "region": region.value,
                "travel_permit_number": permit,
                "valid_from": valid_from.isoformat(),
                "valid_until": valid_until(valid_from).isoformat(),
                "issuing_authority": rng.choice(authorities),
                "status": status,
            }
            made += 1
            valid_from = valid_from + timedelta(days=rng.randrange(200, 900))


def broken(card: dict[str, Any], rng: random.Random) -> bytes:
    """One of the ways a real export line goes wrong."""
    kind = rng.randrange(5)
    if kind == 0:
        number = card["card_number"]
        card["card_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    elif kind == 1:
        card["sex"] = "F" if card["sex"] == "M" else "M"
    elif kind == 2:
        card["valid_until"] = "2026-02-30"
    elif kind == 3:
        card["status"] = "expired_maybe"
    else:
        return orjson.dumps(card)[:40]
    return orjson.dumps(card)


def write(path: Path, count: int, *, bad: float = 0.0, seed: int = 7) -> int:
    """Write the file; returns how many lines were deliberately broken."""
    rng = random.Random(seed + 1)
    broken_lines = 0
    with path.open("wb") as out:
        for card in cards(count, seed):
            if rng.random() < bad:
                out.write(broken(card, rng) + b"\n")
                broken_lines += 1
            else:
                out.write(orjson.dumps(card) + b"\n")
    return broken_lines


def main() -> None:
    """Command line: write one file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--bad", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    bad = write(args.out, args.cards, bad=args.bad, seed=args.seed)
    print(f"wrote {args.cards} lines ({bad} broken) to {args.out}")


if __name__ == "__main__":
    main()
