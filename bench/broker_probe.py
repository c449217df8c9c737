"""What the benchmark's Kafka broker did: its request counts (over JMX) and the CPU of its
threads by kind, so a benchmark can say what the broker spends per application and on what.

The broker is found by the port in PERMITS_KAFKA_BOOTSTRAP; its JMX agent is started on
BENCH_BROKER_JMX_PORT with `jcmd` when nothing answers there yet (no restart needed). Use it on
a broker of one's own: on a shared one the counts are everybody's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import KAFKA, REPO

READER = REPO / "bench" / "broker" / "BrokerRequests.java"
THREAD_LINE = re.compile(r'^"(?P<name>[^"]+)".*?\bcpu=(?P<ms>[0-9.]+)ms', re.MULTILINE)
THREAD_KINDS = (
    ("request handlers", "data-plane-kafka-request-handler"),
    ("network threads", "data-plane-kafka-network-thread"),
    ("JIT compilers", "CompilerThread"),
    ("garbage collector", "GC Thread", "G1 ", "VM Thread"),
    ("log and replica", "ReplicaFetcher", "kafka-log", "log-", "kafka-scheduler"),
    ("group coordinator", "group-coordinator", "group-metadata", "ExpirationReaper"),
    ("controller and metadata", "controller", "raft", "metadata", "broker-"),
)


def bootstrap_port() -> str:
    """The port of the benchmark's broker."""
    return KAFKA.split(",", 1)[0].rsplit(":", 1)[-1]


def is_benchmark_broker(argv: list[str]) -> bool:
    """True for the command line of the broker listening on the benchmark's bootstrap port."""
    if "kafka.Kafka" not in argv:
        return False
    try:
        config = Path(argv[-1]).read_text()
    except OSError:
        return False
    return f"PLAINTEXT://127.0.0.1:{bootstrap_port()}" in config


def broker_pid() -> int | None:
    """The process id of the benchmark's broker, or None when it is not on this machine."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if is_benchmark_broker([word for word in argv if word]):
            return int(entry.name)
    return None


def _java_tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", name).exists():
        return str(Path(java_home, "bin", name))
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} (from a JDK) is needed to probe the broker")
    return found


def _requests(port: int) -> dict[str, int]:
    completed = subprocess.run(
        [_java_tool("java"), str(READER), str(port)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.decode()[-1000:])
    counts: dict[str, int] = json.loads(completed.stdout)
    return counts


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of the broker's threads so far, by kind."""
    dump = subprocess.run(
        [_java_tool("jcmd"), str(pid), "Thread.print"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode(errors="replace")
    used: dict[str, float] = {}
    for match in THREAD_LINE.finditer(dump):
        name = match["name"]
        kind = next(
            (kinds[0] for kinds in THREAD_KINDS if any(word in name for word in kinds[1:])),
            "other",
        )
        used[kind] = used.get(kind, 0.0) + float(match["ms"]) / 1000
    return used


def snapshot() -> dict[str, Any] | None:
    """Request counts and thread CPU now; None unless BENCH_BROKER_JMX_PORT is set."""
    raw_port = os.environ.get("BENCH_BROKER_JMX_PORT")
    if not raw_port:
        return None
    pid = broker_pid()
    if pid is None:
        raise RuntimeError(f"no broker of this machine listens on {KAFKA}")
    port = int(raw_port)
    try:
        requests = _requests(port)
    except RuntimeError:
        subprocess.run(
            [
                _java_tool("jcmd"),
                str(pid),
                "ManagementAgent.start",
                f"jmxremote.port={port}",
                "jmxremote.host=127.0.0.1",
                "jmxremote.authenticate=false",
                "jmxremote.ssl=false",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        requests = _requests(port)
    return {"requests": requests, "thread_seconds": _threads(pid)}


def per_application(
    before: dict[str, Any] | None, after: dict[str, Any] | None, applications: int
) -> dict[str, Any] | None:
    """What the broker did per application between two snapshots."""
    if before is None or after is None:
        return None
    apps = max(applications, 1)

    def rate(key: str, scale: float) -> dict[str, float]:
        return {
            name: round((value - before[key].get(name, 0)) * scale / apps, 3)
            for name, value in sorted(after[key].items())
            if value != before[key].get(name, 0)
        }

    return {
        "requests_per_application": rate("requests", 1.0),
        "thread_cpu_ms_per_application": rate("thread_seconds", 1000.0),
    }
