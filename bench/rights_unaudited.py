"""The rights service with its audit entries left out: the bare path the audit benchmark
measures verification against. Benchmarks only, never deployed: recording an entry returns at
once, so nothing is built, buffered or published and no answer waits for the broker.

    python -m bench.rights_unaudited     (the settings of `python -m permits_rights`)
"""

from __future__ import annotations

from typing import Any

from permits_common.audit import AuditTrail


async def _not_recorded(_trail: AuditTrail, *_args: Any, **_kwargs: Any) -> None:
    """What `AuditTrail.record` does here: nothing."""


if __name__ == "__main__":
    from permits_rights.main import main

    AuditTrail.record = _not_recorded  # type: ignore[method-assign, assignment]
    main()
