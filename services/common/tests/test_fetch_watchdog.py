"""The fetch watchdog ends a worker only on the signature of the stuck partition."""

from __future__ import annotations

from permits_common.fetch_watchdog import never_fetched

NOW = 1_000.0


def test_a_partition_never_fetched_while_others_are_is_stuck() -> None:
    last_fetch = {"apps/0": None, "apps/1": NOW - 1, "cards/0": NOW - 2}
    assigned = {"apps/0": NOW - 61, "apps/1": NOW - 61, "cards/0": NOW - 61}
    assert never_fetched(last_fetch, assigned, NOW) == ["apps/0"]


def test_a_partition_assigned_a_moment_ago_is_given_time() -> None:
    last_fetch = {"apps/0": None, "apps/1": NOW - 1}
    assigned = {"apps/0": NOW - 30, "apps/1": NOW - 300}
    assert never_fetched(last_fetch, assigned, NOW) == []


def test_nothing_is_stuck_while_no_partition_is_fetched() -> None:
    """A broker outage: every partition waits, none is singled out."""
    last_fetch = {"apps/0": None, "apps/1": NOW - 120}
    assigned = {"apps/0": NOW - 300, "apps/1": NOW - 300}
    assert never_fetched(last_fetch, assigned, NOW) == []


def test_a_partition_fetched_before_and_now_paused_is_not_stuck() -> None:
    """A busy agent's partition was fetched until its buffer filled."""
    last_fetch = {"apps/0": NOW - 200, "apps/1": NOW - 1}
    assigned = {"apps/0": NOW - 300, "apps/1": NOW - 300}
    assert never_fetched(last_fetch, assigned, NOW) == []
