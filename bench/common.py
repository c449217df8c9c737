"""What every benchmark shares: the stack runner, fresh names per run, statistics, results files.

Each run gets its own databases, consumer groups, topics and ports (the stack on 82xx), so a
developer's running system on 80xx and the test suite on the same broker are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LOGS = REPO / ".local" / "logs"
KAFKA = os.environ.get("PERMITS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MONGO = os.environ.get("PERMITS_MONGO_URL", "mongodb://127.0.0.1:27017/")
PORT_OFFSET = int(os.environ.get("BENCH_PORT_OFFSET", "200"))
"""The stack's ports are the usual ones plus this (82xx); another offset when those are taken."""
SERVICES = ("intake", "issuance", "rights", "notify", "audit")


def _load_stack() -> ModuleType:
    """deploy/local/stack.py is a script folder, not a package: load it by path."""
    spec = importlib.util.spec_from_file_location(
        "permits_bench_stack", REPO / "deploy/local/stack.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


stack_module = _load_stack()


def say(message: str) -> None:
    """Progress on stderr (results go to files)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def new_run_id(name: str) -> str:
    """A short unique tag for one benchmark run: databases, groups and topics carry it."""
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


def database_names(run_id: str) -> dict[str, str]:
    """Each service's database in this run."""
    return {name: f"{run_id}_{name}".replace("-", "_") for name in SERVICES}


def make_stack(run_id: str, extra_env: Mapping[str, str] | None = None) -> Any:
    """A stack on shifted ports with its own databases and consumer groups (like the e2e suite)."""
    component_env = {
        name: {
            "PERMITS_MONGO_DATABASE": database_names(run_id)[name],
            f"PERMITS_{name.upper()}_GROUP": f"{run_id}-{name}",
        }
        for name in SERVICES
    }
    env = {
        "PERMITS_KAFKA_BOOTSTRAP": KAFKA,
        "PERMITS_MONGO_URL": MONGO,
        "PERMITS_ENV": "development",
        "PERMITS_LOG_LEVEL": "WARNING",
        # Only the events of this run: a fresh group starting at the end of the shared topics.
        "PERMITS_ISSUANCE_OFFSET_RESET": "latest",
        "PERMITS_NOTIFY_OFFSET_RESET": "latest",
        "PERMITS_RIGHTS_OFFSET_RESET": "latest",
        "PERMITS_INTAKE_OFFSET_RESET": "latest",
        "PERMITS_AUDIT_OFFSET_RESET": "latest",
        **(extra_env or {}),
    }
    return stack_module.Stack(
        ports=stack_module.Ports.shifted(PORT_OFFSET),
        extra_env=env,
        component_env=component_env,
        log_dir=LOGS / run_id,
        verbose=False,
    )


async def create_topic(name: str, partitions: int = 4) -> None:
    """A topic of the run's own (named after its run id, so the clean-up removes it)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def drop_databases(run_id: str) -> None:
    """Remove the run's databases from the shared store."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO)
    try:
        # Named, not listed: listing sizes every database on FerretDB and takes minutes.
        for name in database_names(run_id).values():
            await client.drop_database(name)
    finally:
        await client.close()


async def delete_topics(names: Sequence[str]) -> None:
    """Remove the run's own topics from the shared broker (never the catalog's)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing and name.startswith("bench-")]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def run_topics(run_id: str) -> list[str]:
    """Every topic on the broker this run created (changelogs, Faust internals, hops)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        return [name for name in await admin.list_topics() if name.startswith(run_id)]
    finally:
        await admin.close()


def cleanup(run_id: str) -> None:
    """Drop the run's databases and topics; failures are reported, not raised."""
    try:
        asyncio.run(drop_databases(run_id))
        asyncio.run(delete_topics(asyncio.run(run_topics(run_id))))
    except Exception as exc:  # cleanup must not hide the results
        say(f"cleanup of {run_id} incomplete: {exc!r}")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 is a latency someone really waited)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    """Median of the repetitions (the figure quoted)."""
    return statistics.median(values) if values else float("nan")


def run_loadgen(spec: Mapping[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """Run the load generator in its own process (never in the server's) and read its JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def machine() -> dict[str, Any]:
    """Enough about the machine to read the figures against."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/results/<name>.json, written atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)
    return path


def stamp() -> dict[str, Any]:
    """When and where a result was measured, and the commit it measured."""
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, cwd=REPO, check=False
        )
        .stdout.decode()
        .strip()
    )
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit,
        "machine": machine(),
    }


def ratio(value: float, baseline: float) -> float:
    """value / baseline, rounded for the table."""
    return round(value / baseline, 3) if baseline else float("nan")


def start_profilers(
    stack: Any, names: Sequence[str], tag: str, rate: int = 50
) -> list[subprocess.Popen[bytes]]:
    """With BENCH_PROFILE_SECONDS set, sample the named services with py-spy (if installed)
    into .local/profiles/<tag>-<name>.txt (collapsed stacks, `rate` samples a second);
    otherwise nothing."""
    seconds = os.environ.get("BENCH_PROFILE_SECONDS")
    spy = Path(sys.executable).with_name("py-spy")
    if not seconds or not spy.exists():
        return []
    folder = REPO / ".local" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    profilers = []
    for name in names:
        pid = stack._processes[name].pid
        out = folder / f"{tag}-{name}.txt"
        profilers.append(
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--duration",
                    seconds,
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    say(f"profiling {', '.join(names)} for {seconds} s into {folder}")
    return profilers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def reference_server(timeout: float = 30.0) -> Iterator[str]:
    """Run bench/reference.py (a bare FastAPI app) in its own process; yields its base URL."""
    import socket

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.reference", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"reference server exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("reference server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(stack: Any) -> dict[str, float]:
    """CPU seconds (user + system, every thread) each process of the stack has used so far:
    on a shared machine the rate moves with everyone's load, the CPU an application costs
    each process hardly does."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, process in stack._processes.items():
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / tick
    return used


SHARED_PROCESSES = {"kafka": "kafka.Kafka", "ferretdb": "ferretdb", "postgresql": "postgres"}
"""The infrastructure's processes, by a word of their command line (PostgreSQL: every backend)."""


def _instance_processes() -> set[int] | None:
    """With PERMITS_INFRA_STATE set (a store and broker of one's own, see deploy/local/infra.py),
    the pids of that instance's Kafka, FerretDB and PostgreSQL and of all their descendants
    (PostgreSQL's backends); otherwise None: every such process on the machine counts."""
    state = os.environ.get("PERMITS_INFRA_STATE")
    if not state:
        return None
    roots = set()
    for name in ("kafka", "store", "postgres"):
        with contextlib.suppress(OSError, ValueError):
            roots.add(int((REPO / state / "run" / f"{name}.pid").read_text().strip()))
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(entry.name)] = int(stat[1])
    chosen = set(roots)
    for pid in parent:
        ancestor, seen = pid, 0
        while ancestor in parent and ancestor not in chosen and seen < 64:
            ancestor, seen = parent[ancestor], seen + 1
        if ancestor in chosen:
            chosen.add(pid)
    return chosen


def shared_cpu_seconds() -> dict[str, float]:
    """CPU seconds the local Kafka, FerretDB and PostgreSQL (every process of each) have used so
    far. They serve everyone on the machine, so their figure per application holds only on a
    quiet machine or with an instance of one's own (PERMITS_INFRA_STATE); PostgreSQL's backends
    that ended during the run are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(SHARED_PROCESSES, 0.0)
    instance = _instance_processes()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (instance is not None and int(entry.name) not in instance):
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for name, word in SHARED_PROCESSES.items():
            if word in command.split(" ", 1)[0] or (name == "kafka" and word in command):
                used[name] += (int(fields[11]) + int(fields[12])) / tick
                break
    return used
