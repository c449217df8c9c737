"""Updates of one document take turns; other documents do not wait; no lock outlives its use."""

from __future__ import annotations

import asyncio

from permits_common.mongo import KeyedLocks


async def test_one_key_takes_turns_other_keys_run_alongside() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def update(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.01)
            inside[key] -= 1

    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(update(key) for key in ("a", "a", "a", "b", "b", "b")))
    elapsed = asyncio.get_running_loop().time() - started
    assert most == {"a": 1, "b": 1}
    assert elapsed < 0.06
    assert len(locks) == 0
