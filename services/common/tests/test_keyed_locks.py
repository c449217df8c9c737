"""Updates of one document take turns; other documents do not wait; no lock outlives its use."""

from __future__ import annotations

import asyncio

from permits_common.mongo import KeyedLocks


async def test_one_key_takes_turns_other_keys_run_alongside() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    keys_at_once = 0

    async def update(key: str) -> None:
        nonlocal keys_at_once
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            keys_at_once = max(keys_at_once, sum(1 for count in inside.values() if count))
            await asyncio.sleep(0.01)
            inside[key] -= 1

    await asyncio.gather(*(update(key) for key in ("a", "a", "a", "b", "b", "b")))
    assert most == {"a": 1, "b": 1}, "one key's holders take turns"
    assert keys_at_once == 2, "another key's holder does not wait for them"
    assert len(locks) == 0
