"""The suite keeps off a developer's running system: its own ports, and a guard that notices."""

from __future__ import annotations

import os

import pytest

from tests.system import dev_stack_guard, stack_module

DEV_KAFKA, DEV_STORE, differences = (
    dev_stack_guard.DEV_KAFKA,
    dev_stack_guard.DEV_STORE,
    dev_stack_guard.differences,
)


def test_differences_name_every_change() -> None:
    before = {"kafka": {"permits.cards.v1[0]": 5}, "store": {"intake.applications": 3}}
    after = {
        "kafka": {"permits.cards.v1[0]": 6, "permits.new.v1[0]": 0},
        "store": {"intake.applications": 3},
    }
    assert differences(before, after) == [
        "kafka: permits.cards.v1[0]: 5 -> 6",
        "kafka: permits.new.v1[0]: None -> 0",
    ]
    assert differences(before, before) == []
    assert differences({"kafka": None, "store": None}, before) == [
        "kafka: appeared",
        "store: appeared",
    ]


@pytest.mark.skipif("PERMITS_INFRA_STATE" not in os.environ, reason="only under `./permits test`")
def test_the_suite_runs_on_its_own_broker_and_store() -> None:
    infra = stack_module.infra
    assert infra.kafka_bootstrap() != DEV_KAFKA
    assert infra.mongo_url() != DEV_STORE
    assert infra.STATE_DIR != infra.LOCAL_DIR
