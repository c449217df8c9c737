"""A library that logs the same error thousands of times a second leaves one line per interval."""

from __future__ import annotations

import logging
import time

from permits_common.logs import QuietRepeats


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_of_one_template_are_held_back_and_counted() -> None:
    quiet = QuietRepeats(interval_seconds=0.2)
    template = "Unable connect to node with id %s: %s"
    passed = [quiet.filter(_record("aiokafka.client", template, 1, "refused")) for _ in range(500)]
    assert passed.count(True) == 1
    time.sleep(0.25)
    later = _record("aiokafka.client", template, 1, "refused")
    assert quiet.filter(later)
    assert "[499 more like this" in later.getMessage()
    assert later.getMessage().startswith("Unable connect to node with id 1: refused")


def test_other_templates_and_our_own_loggers_are_never_held_back() -> None:
    quiet = QuietRepeats(interval_seconds=60)
    assert quiet.filter(_record("aiokafka.client", "Unable to update metadata from %s", [1]))
    assert quiet.filter(_record("aiokafka.conn", "Unable to update metadata from %s", [1]))
    assert quiet.filter(_record("aiokafka.client", "another message"))
    assert all(quiet.filter(_record("permits.intake", "card issued")) for _ in range(10))
