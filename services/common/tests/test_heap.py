"""A service process settles its heap once its long-lived objects exist."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import gc
import fastapi  # a framework's worth of long-lived objects
from permits_common.heap import YOUNG_THRESHOLD, settle_heap

assert gc.get_freeze_count() == 0
settle_heap()
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10), gc.get_threshold()
garbage = []
garbage.append(garbage)
del garbage
assert gc.collect() >= 1, "what is made afterwards is still collected"
print("ok")
"""


def test_settled_heap_is_frozen_and_new_garbage_still_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "ok"
