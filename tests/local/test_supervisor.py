"""`./permits run` keeps the system up: a crashed component comes back, the rest goes on.

Real processes (small HTTP servers standing in for services, so the test needs no Kafka),
killed with SIGKILL as a crash would, supervised by the same `Supervisor` the run command uses.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system import stack_module

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server(name: str, directory: Path) -> Any:
    port = _free_port()
    return stack_module.Component(
        name=name,
        argv=(
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
        ),
        port=port,
        ready_path="/",
        description="a stand-in HTTP server",
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Any]:
    running = stack_module.Stack(
        only=[_server("alpha", tmp_path), _server("beta", tmp_path)],
        log_dir=tmp_path / "logs",
        verbose=False,
    )
    running.start(timeout=30)
    try:
        yield running
    finally:
        running.stop()


def _pid(stack: Any, name: str) -> int:
    pid: int = stack._processes[name].pid
    return pid


def test_a_crashed_component_is_restarted_and_the_others_keep_running(stack: Any) -> None:
    now = [1000.0]
    supervisor = stack_module.Supervisor(stack, clock=lambda: now[0])
    beta = _pid(stack, "beta")
    os.killpg(_pid(stack, "alpha"), signal.SIGKILL)
    stack._processes["alpha"].wait(10)

    assert supervisor.check() == [], "noticed, but the first restart waits one second"
    assert stack.exit_code("alpha") == -signal.SIGKILL
    now[0] += 1.0
    assert supervisor.check() == ["alpha"]
    assert _pid(stack, "beta") == beta, "the rest was left alone"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(stack.url("alpha") + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        pytest.fail("alpha did not answer again after its restart")


def test_restarts_back_off_and_reset_after_a_stable_run(stack: Any) -> None:
    now = [1000.0]
    supervisor = stack_module.Supervisor(stack, clock=lambda: now[0])
    delays = []
    for _ in range(4):
        os.killpg(_pid(stack, "alpha"), signal.SIGKILL)
        stack._processes["alpha"].wait(10)
        supervisor.check()
        delays.append(supervisor.restarts["alpha"].delay())
        now[0] += delays[-1]
        assert supervisor.check() == ["alpha"]
    assert delays == [1.0, 2.0, 4.0, 8.0]

    now[0] += stack_module.Restarts.STABLE_SECONDS
    os.killpg(_pid(stack, "alpha"), signal.SIGKILL)
    stack._processes["alpha"].wait(10)
    supervisor.check()
    assert supervisor.restarts["alpha"].delay() == 1.0
