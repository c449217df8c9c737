"""The whole system as real processes for the cross-service tests: how one is built and
reached. Used by the session's `system` fixture and by fault tests that need a system of
their own (two replicas of everything)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from permits_common.settings import development_tokens
from tests import dev_stack_guard
from tests.journeys import Clients

__all__ = ["Clients", "build_system", "clients_of", "dev_stack_guard", "stack_module"]

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "issuance", "rights", "notify", "audit")
CONSOLE_TOKENS = {"e2e-clerk-lixia": "clerk:LIXIA"}


def _load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("permits_stack", REPO / "deploy/local/stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stack_module = _load_stack()


def build_system(
    infrastructure: dict[str, str],
    *,
    port_offset: int,
    replicas: int = 1,
    offset_reset: str = "earliest",
    topic_namespace: str = "",
) -> Any:
    """A whole system (not started) on ports shifted by `port_offset`, with its own databases
    and consumer groups, `replicas` processes of every service. `offset_reset="latest"` keeps
    a system started on a broker with history from replaying every earlier test's events. A
    system running beside another on one broker needs a `topic_namespace` (e.g. "replicas."):
    otherwise each system's issuance also decides the other's applications."""
    run = uuid.uuid4().hex[:8]
    component_env = {
        name: {
            "PERMITS_MONGO_DATABASE": f"e2e_{run}_{name}",
            f"PERMITS_{name.upper()}_GROUP": f"e2e-{run}-{name}",
        }
        for name in SERVICES
    }
    return stack_module.Stack(
        ports=stack_module.Ports.shifted(port_offset),
        extra_env={
            **infrastructure,
            "PERMITS_ENV": "development",
            "PERMITS_TOPIC_NAMESPACE": topic_namespace,
            "PERMITS_PRODUCTION_SIMULATOR_DELAY_SECONDS": "0.2",
            "PERMITS_PRODUCTION_CALLBACK_TIMEOUT_SECONDS": "20",
            "PERMITS_VERIFY_RATE_PER_SECOND": "100000",
            "PERMITS_VERIFY_BURST": "100000",
            "PERMITS_QUIET_HOURS_START": "00:00",
            "PERMITS_QUIET_HOURS_END": "00:00",
            "PERMITS_SMS_PER_RECIPIENT_PER_HOUR": "1000",
            "PERMITS_DEADLINE_SCAN_SECONDS": "1",
            "PERMITS_TOKENS": json.dumps({**development_tokens(), **CONSOLE_TOKENS}),
            **{f"PERMITS_{name.upper()}_OFFSET_RESET": offset_reset for name in SERVICES},
        },
        component_env=component_env,
        log_dir=REPO / ".local" / "logs" / f"e2e-{run}",
        replicas=replicas,
    )


def clients_of(system: Any) -> Clients:
    """HTTP clients of every part of a running system (close them with `close()`)."""

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=system.url(name), timeout=30)

    return Clients(
        intake=client("intake"),
        issuance=client("issuance"),
        rights=client("rights"),
        notify=client("notify"),
        sms=client("sms-gateway"),
        mail=client("smtp"),
        audit=client("audit"),
    )
