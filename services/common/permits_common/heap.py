"""Keeping the garbage collector off the request path of a long-running service process.

A full collection walks every object the collector tracks, and a service process holds a large
heap from the moment it has imported its frameworks (FastAPI, pydantic, PyMongo, aiokafka) and
built its app, let alone rights' register. Every request in flight waits through such a
collection, and the youngest generation's default threshold (700 net allocations) promotes the
objects of requests still in flight, so full collections come often under load.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations before the youngest generation is collected (Python's default is 700)."""


def settle_heap() -> None:
    """Freeze what exists now out of the collector's reach (it is still freed when its last
    reference goes) and collect the youngest generation after `YOUNG_THRESHOLD` net
    allocations: the objects of a request then usually die before a collection instead of
    being promoted. Called when a process's long-lived objects exist: by `run_service` once
    the app is built, by issuance's and notify's workers before they start, and by rights
    once its register is replayed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
