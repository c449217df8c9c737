"""Run the whole system on one machine: infrastructure, simulators, the services, the console.

    python deploy/local/stack.py run     # start everything, print URLs and tokens; Ctrl-C stops it
    python deploy/local/stack.py demo    # push a realistic mix of applications through it

The same `Stack` class starts the services as real processes for the end-to-end and fault
tests, which can also kill and restart any one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import httpx

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LOG_DIR = REPO_ROOT / ".local" / "logs"
HOST = "127.0.0.1"


def _load_sibling(name: str) -> ModuleType:
    """Load a module of this folder by path (deploy/local is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"permits_local_{name}", HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


infra = _load_sibling("infra")


@dataclass(frozen=True)
class Component:
    """One process of the stack: how to start it and how to know it is ready."""

    name: str
    argv: tuple[str, ...]
    port: int
    ready_path: str
    description: str
    env: Mapping[str, str] = field(default_factory=dict)
    is_service: bool = True
    replica_of: str | None = None
    """Set on the processes of a replicated service (whose name the balancer then takes)."""
    balances: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class Ports:
    """Where each component listens; tests shift them to stay clear of a running dev stack."""

    intake: int = 8001
    issuance: int = 8002
    rights: int = 8003
    notify: int = 8004
    audit: int = 8005
    console: int = 8000
    production_centre: int = 8010
    sms_gateway: int = 8011
    smtp: int = 8025
    smtp_http: int = 8026

    @classmethod
    def shifted(cls, offset: int) -> Ports:
        base = cls()
        return cls(**{name: getattr(base, name) + offset for name in base.__dataclass_fields__})


def components(ports: Ports, extra_env: Mapping[str, str] | None = None) -> list[Component]:
    """The stack in start order: external parties first, then the services."""
    py = sys.executable
    shared = {
        "PERMITS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap(),
        "PERMITS_MONGO_URL": infra.mongo_url(),
        "PERMITS_INTAKE_PORT": str(ports.intake),
        "PERMITS_ISSUANCE_PORT": str(ports.issuance),
        "PERMITS_RIGHTS_PORT": str(ports.rights),
        "PERMITS_NOTIFY_PORT": str(ports.notify),
        "PERMITS_AUDIT_PORT": str(ports.audit),
        "PERMITS_CONSOLE_PORT": str(ports.console),
        "PERMITS_INTAKE_URL": f"http://{HOST}:{ports.intake}",
        "PERMITS_RIGHTS_URL": f"http://{HOST}:{ports.rights}",
        "PERMITS_CONSOLE_PUBLIC_URL": f"http://{HOST}:{ports.console}",
        "PERMITS_PRODUCTION_CENTRE_URL": f"http://{HOST}:{ports.production_centre}",
        "PERMITS_ISSUANCE_PUBLIC_URL": f"http://{HOST}:{ports.issuance}",
        "PERMITS_SMS_URL": f"http://{HOST}:{ports.sms_gateway}/api/v1/messages",
        "PERMITS_SMTP_HOST": HOST,
        "PERMITS_SMTP_PORT": str(ports.smtp),
        **(extra_env or {}),
    }
    return [
        Component(
            "production-centre",
            (
                py,
                "-m",
                "permits_issuance.simulator",
                "--host",
                HOST,
                "--port",
                str(ports.production_centre),
            ),
            ports.production_centre,
            "/healthz",
            "card production centre (simulator)",
            shared,
            is_service=False,
        ),
        Component(
            "sms-gateway",
            (
                py,
                "-m",
                "permits_notify.simulators",
                "sms",
                "--host",
                HOST,
                "--port",
                str(ports.sms_gateway),
            ),
            ports.sms_gateway,
            "/healthz",
            "SMS gateway (simulator)",
            shared,
            is_service=False,
        ),
        Component(
            "smtp",
            (
                py,
                "-m",
                "permits_notify.simulators",
                "smtp",
                "--host",
                HOST,
                "--port",
                str(ports.smtp),
                "--http-port",
                str(ports.smtp_http),
            ),
            ports.smtp_http,
            "/messages",
            "mail server (aiosmtpd sink)",
            shared,
            is_service=False,
        ),
        Component(
            "intake",
            (py, "-m", "permits_intake"),
            ports.intake,
            "/readyz",
            "applications at the acceptance points",
            shared,
        ),
        Component(
            "issuance",
            (py, "-m", "permits_issuance"),
            ports.issuance,
            "/readyz",
            "deadline clock, card numbers, card lifecycle",
            shared,
        ),
        Component(
            "rights",
            (py, "-m", "permits_rights"),
            ports.rights,
            "/readyz",
            "agency feeds, webhooks, verification",
            shared,
        ),
        Component(
            "notify",
            (py, "-m", "permits_notify"),
            ports.notify,
            "/readyz",
            "messages to applicants",
            shared,
        ),
        Component(
            "audit",
            (py, "-m", "permits_audit"),
            ports.audit,
            "/readyz",
            "the audit trail: who saw whose data",
            shared,
        ),
        Component(
            "console",
            (py, "-m", "permits_console"),
            ports.console,
            "/healthz",
            "web pages for clerks, applicants and operators",
            shared,
            is_service=False,
        ),
    ]


REPLICA_PORT_STEP = 40
"""Replica k of a service listens on its port + k × this (8041, 8042 for intake), and a
balancer takes the service's own port, so clients and the other services see one address."""


def replicated(parts: Sequence[Component], replicas: int) -> list[Component]:
    """The stack with `replicas` processes of every service, each behind a local balancer;
    consumers of one service share its consumer group (and so the partitions)."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    if replicas == 1:
        return list(parts)
    result: list[Component] = []
    for part in parts:
        if not part.is_service:
            result.append(part)
            continue
        ports = [part.port + REPLICA_PORT_STEP * index for index in range(1, replicas + 1)]
        for index, port in enumerate(ports, start=1):
            env = {**part.env, f"PERMITS_{part.name.upper()}_PORT": str(port)}
            result.append(
                Component(
                    f"{part.name}-{index}",
                    part.argv,
                    port,
                    part.ready_path,
                    f"{part.description} (replica {index} of {replicas})",
                    env,
                    replica_of=part.name,
                )
            )
        backends = [f"--backend={HOST}:{port}" for port in ports]
        result.append(
            Component(
                part.name,
                (sys.executable, str(HERE / "balancer.py"), "--port", str(part.port), *backends),
                part.port,
                part.ready_path,
                f"{part.description} (balancer over {replicas} replicas)",
                part.env,
                is_service=False,
                balances=True,
            )
        )
    return result


class StartupError(RuntimeError):
    """A component did not become ready; the message points at its log."""


class Stack:
    """The processes of one running system, started and stopped together."""

    def __init__(
        self,
        ports: Ports | None = None,
        extra_env: Mapping[str, str] | None = None,
        log_dir: Path = LOG_DIR,
        verbose: bool = True,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
        only: Sequence[Component] | None = None,
        replicas: int = 1,
    ) -> None:
        self.ports = ports or Ports()
        chosen = components(self.ports, extra_env) if only is None else only
        chosen = replicated(chosen, replicas)
        self.components = {c.name: c for c in chosen}
        self._component_env = component_env or {}
        self.infra = infra
        self.log_dir = log_dir
        self.verbose = verbose
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"==> {message}", file=sys.stderr, flush=True)

    def url(self, name: str) -> str:
        return self.components[name].url

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, names: Sequence[str] | None = None, timeout: float = 90.0) -> None:
        """Start components (all by default) in order and wait until each is ready; when one
        fails to start, those this call started are stopped again (no orphans holding ports)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        spawned: list[str] = []
        try:
            for name in names or list(self.components):
                if self._spawn(name):
                    spawned.append(name)
                self._wait_ready(name, timeout)
        except BaseException:
            if spawned:
                self.stop(spawned)
            raise

    def spawn(self, name: str) -> None:
        """Start one component's process without waiting for it to be ready."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(name)

    def exit_code(self, name: str) -> int | None:
        """The exit code of a component's last process, None while it runs or never ran."""
        process = self._processes.get(name)
        return None if process is None else process.poll()

    def _spawn(self, name: str) -> bool:
        """Start the component's process unless it runs; whether this call started it."""
        component = self.components[name]
        if name in self._processes and self._processes[name].poll() is None:
            return False
        env = {
            **os.environ,
            **component.env,
            **self._component_env.get(component.replica_of or name, {}),
            "PYTHONUNBUFFERED": "1",
        }
        self.say(f"starting {name} on {component.url} ({component.description})")
        log = self.log_path(name).open("ab")
        self._processes[name] = subprocess.Popen(
            component.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        log.close()
        return True

    def _wait_ready(self, name: str, timeout: float) -> None:
        component = self.components[name]
        process = self._processes[name]
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise StartupError(
                        f"{name} exited with code {process.returncode}; see {self.log_path(name)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(component.url + component.ready_path).status_code == 200:
                        return
                time.sleep(0.2)
        raise StartupError(f"{name} not ready after {timeout:.0f}s; see {self.log_path(name)}")

    def stop(self, names: Sequence[str] | None = None, timeout: float = 15.0) -> None:
        """SIGTERM in reverse start order, SIGKILL whatever outlives the timeout."""
        for name in reversed(names or list(self._processes)):
            process = self._processes.get(name)
            if process is None or process.poll() is not None:
                self._processes.pop(name, None)
                continue
            self.say(f"stopping {name}")
            self.terminate(name, timeout)

    def terminate(self, name: str, timeout: float) -> tuple[float, int]:
        """SIGTERM one component and wait: how long it took to exit, and its exit code
        (negative: killed by that signal; SIGKILL when it outlived `timeout`)."""
        process = self._processes.pop(name)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return time.monotonic() - started, process.returncode

    def kill(self, name: str) -> None:
        """kill -9, as a crash would (fault tests)."""
        process = self._processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self, name: str, timeout: float = 90.0) -> None:
        """Start a component again after `kill` or `stop`."""
        self._spawn(name)
        self._wait_ready(name, timeout)

    def running(self, name: str) -> bool:
        process = self._processes.get(name)
        return process is not None and process.poll() is None

    @contextlib.contextmanager
    def running_stack(self) -> Iterator[Stack]:
        """Start everything, and stop everything on the way out, whatever happened."""
        try:
            self.start()
            yield self
        finally:
            self.stop()


@dataclass
class Restarts:
    """Backoff of one supervised component: 1 s, 2 s, 4 s ... up to a minute between restarts;
    a component that has stayed up for `STABLE_SECONDS` starts again from 1 s."""

    FIRST_DELAY: ClassVar[float] = 1.0
    MAX_DELAY: ClassVar[float] = 60.0
    STABLE_SECONDS: ClassVar[float] = 60.0
    failures: int = 0
    down_since: float | None = None
    up_since: float = field(default_factory=time.monotonic)

    def delay(self) -> float:
        backoff: float = self.FIRST_DELAY * 2.0 ** max(self.failures - 1, 0)
        return min(backoff, self.MAX_DELAY)

    def went_down(self, now: float) -> None:
        if now - self.up_since >= self.STABLE_SECONDS:
            self.failures = 0
        self.failures += 1
        self.down_since = now

    def due(self, now: float) -> bool:
        return self.down_since is not None and now - self.down_since >= self.delay()

    def came_up(self, now: float) -> None:
        self.down_since = None
        self.up_since = now


class Supervisor:
    """Keeps a running system running: a component that exits (a crash, kill -9) is started
    again with backoff and said so on the console, while everything else goes on. The local
    Kafka and store that `run` started are watched the same way."""

    def __init__(
        self,
        stack: Stack,
        infra_names: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.infra_names = list(infra_names)
        self.clock = clock
        self.restarts: dict[str, Restarts] = {}

    def _alive(self, name: str) -> bool:
        if name in self.stack.components:
            return self.stack.running(name)
        states = {entry.name: entry.state for entry in self.stack.infra.status()}
        return states.get(name) != "stopped"

    def _start(self, name: str) -> None:
        if name in self.stack.components:
            self.stack.spawn(name)
        else:
            self.stack.infra.up(name)

    def check(self) -> list[str]:
        """One round: note what went down, restart what is due; the names restarted."""
        now = self.clock()
        restarted = []
        for name in [*self.infra_names, *self.stack.components]:
            record = self.restarts.setdefault(name, Restarts(up_since=now))
            if self._alive(name):
                continue
            if record.down_since is None:
                record.went_down(now)
                code = self.stack.exit_code(name)
                self.stack.say(
                    f"{name} stopped unexpectedly (exit code {code}); restarting in "
                    f"{record.delay():.0f} s; log: {self.stack.log_path(name)}"
                )
            if record.due(now):
                try:
                    self._start(name)
                except Exception as exc:
                    self.stack.say(f"{name} could not be restarted ({exc}); trying again")
                    record.went_down(now)
                    continue
                record.came_up(now)
                restarted.append(name)
                self.stack.say(f"{name} restarted (attempt {record.failures})")
        return restarted


def reset_topics() -> None:
    """Delete and recreate every topic of the catalog: an empty broker for a fresh system.

    Only the end-to-end and fault suites use it, so leftovers of earlier tests (a loaded 2027
    calendar, half-finished applications) cannot leak into the journeys they check.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    from permits_common.events.topics import TOPICS
    from permits_common.kafka import connection_options
    from permits_common.settings import CommonSettings

    async def _reset() -> None:
        settings = CommonSettings(kafka_bootstrap=infra.kafka_bootstrap())
        admin = AIOKafkaAdminClient(**connection_options(settings))
        await admin.start()
        try:
            names = {spec.name for spec in TOPICS}
            existing = names.intersection(await admin.list_topics())
            if existing:
                await admin.delete_topics(sorted(existing))
            for _ in range(100):
                if not names.intersection(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

    _run_apart(_reset())
    for attempt in range(50):
        try:
            ensure_topics()
            return
        except Exception:
            if attempt == 49:
                raise
            time.sleep(0.2)


def _run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to the end on a loop of its own, in a worker thread: a caller may have
    a loop running already (Playwright's sync driver sets one; asyncio.run refuses then)."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(asyncio.run, coroutine).result()


def ensure_topics() -> None:
    """Create the catalog's topics with their partition counts before any service starts."""

    from permits_common.kafka import ensure_topics as create
    from permits_common.settings import CommonSettings

    _run_apart(create(CommonSettings(kafka_bootstrap=infra.kafka_bootstrap())))


def _print_welcome(stack: Stack) -> None:
    from permits_common.settings import development_tokens

    console = stack.url("console")
    lines = [
        "",
        f"  console   {console}/   (clerks and operators sign in with a token below; "
        f"applicants: {console}/status)",
        "",
        "The residence-permit platform is running:",
        "",
    ]
    for component in stack.components.values():
        if (component.is_service and component.replica_of is None) or component.balances:
            lines.append(
                f"  {component.name:<9} {component.url}/docs   (OpenAPI: "
                f"{component.url}/openapi.json, metrics: {component.url}/metrics)"
            )
    lines += [
        "",
        f"  production centre simulator  {stack.url('production-centre')}",
        f"  SMS gateway simulator        {stack.url('sms-gateway')}/api/v1/messages",
        f"  mail sink (SMTP {HOST}:{stack.ports.smtp})  {stack.url('smtp')}/messages",
        f"  Kafka {infra.kafka_bootstrap()}, document store {infra.mongo_url()}",
        "",
        "Development tokens (refused when PERMITS_ENV=production):",
    ]
    for token, role in development_tokens().items():
        lines.append(f"  {token:<26} {role}")
    lines += ["", "Try: ./permits demo      Logs: .local/logs/      Stop: Ctrl-C", ""]
    print("\n".join(lines), flush=True)


def run(replicas: int = 1) -> int:
    """Bring up everything and keep it running until Ctrl-C."""
    started = infra.up("all")
    stack = Stack(replicas=replicas)
    stopping = False

    def _interrupt(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.say("creating Kafka topics")
        ensure_topics()
        stack.start()
        _print_welcome(stack)
        supervisor = Supervisor(stack, infra_names=started)
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        for name in reversed(started):
            infra.down(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["run", "demo"])
    parser.add_argument("--intake", default=f"http://{HOST}:8001", help="intake URL for demo")
    parser.add_argument(
        "--replicas",
        type=int,
        default=int(os.environ.get("PERMITS_REPLICAS", "1")),
        help="processes of every service (run; default PERMITS_REPLICAS or 1): more than one "
        "puts a local balancer on each service's port and the replicas on port + 40 × k",
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        return run(args.replicas)
    exit_code: int = _load_sibling("demo").run_demo(args.intake, rest)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
