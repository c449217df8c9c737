#!/usr/bin/env python3
"""Run a real Kafka and a real MongoDB-compatible store locally, without Docker.

Development machines and CI have no Docker and no Kafka/MongoDB packages, so this
tool builds Apache Kafka 3.9.1 (KRaft, from Maven Central jars) and FerretDB 1.24.2
(built with Go) into ``<repo>/.local/`` and runs them on 127.0.0.1. The store is
FerretDB on PostgreSQL 15 from the system's packages (installed with apt-get when
missing and run as root), with its data folder in ``<repo>/.local/`` too.
It is stdlib-only because it must work before any virtualenv exists.

    python3 deploy/local/infra.py up [all|kafka|store|postgres]
    python3 deploy/local/infra.py down [all|kafka|store|postgres]
    python3 deploy/local/infra.py status [--quiet-if-running]
    python3 deploy/local/infra.py kill kafka|store|postgres
    python3 deploy/local/infra.py build [all|kafka|store|postgres]

``store`` is FerretDB together with the PostgreSQL it keeps its data in;
``postgres`` is that PostgreSQL alone.

Tests can load this file with importlib and call ``up``, ``down``, ``kill`` and
``status``; ``kafka_bootstrap()`` and ``mongo_url()`` give the addresses to use.
Setting PERMITS_KAFKA_BOOTSTRAP or PERMITS_MONGO_URL makes ``up`` skip the local
server and use the given one instead. PERMITS_STORE_PORT and PERMITS_POSTGRES_PORT
move the local store and its PostgreSQL to other ports, PERMITS_KAFKA_PORT and
PERMITS_KAFKA_CONTROLLER_PORT the broker, and PERMITS_INFRA_STATE (a folder relative to the
repository) keeps that instance's data, logs and pid files apart: `./permits test` runs a
second instance this way beside the one of `./permits run`.
"""

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import string
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InfraError(Exception):
    """A failure the user can act on; the message says what to do."""


def _port_setting(name: str, default: int) -> int:
    """A port from the environment, or the default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise InfraError(f"{name}={raw!r} is not a TCP port number")
    return int(raw)


HOST = "127.0.0.1"
KAFKA_PORT = _port_setting("PERMITS_KAFKA_PORT", 9092)
KAFKA_CONTROLLER_PORT = _port_setting("PERMITS_KAFKA_CONTROLLER_PORT", 9093)
STORE_PORT = _port_setting("PERMITS_STORE_PORT", 27017)
POSTGRES_PORT = _port_setting("PERMITS_POSTGRES_PORT", 5433)
KAFKA_BOOTSTRAP = f"{HOST}:{KAFKA_PORT}"
MONGO_URL = f"mongodb://{HOST}:{STORE_PORT}/"
KAFKA_ENV = "PERMITS_KAFKA_BOOTSTRAP"
MONGO_ENV = "PERMITS_MONGO_URL"
SERVICES = ("kafka", "store", "postgres")

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LOCAL_DIR = REPO_ROOT / ".local"
STATE_DIR = REPO_ROOT / os.environ.get("PERMITS_INFRA_STATE", ".local")
"""Data, logs and pid files of this instance. The builds (Kafka's jars, FerretDB's binary) stay
in LOCAL_DIR for every instance; `./permits test` runs its own instance in `.local/test` on its
own ports, so the suite never touches the topics and databases of a running `./permits run`."""
LOG_DIR = STATE_DIR / "logs"
RUN_DIR = STATE_DIR / "run"

KAFKA_SRC = HERE / "kafka"
KAFKA_DIR = LOCAL_DIR / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_LIBS_MANIFEST = KAFKA_DIR / "libs.manifest.json"
KAFKA_STATE = STATE_DIR / "kafka"
KAFKA_DATA = KAFKA_STATE / "data"
KAFKA_CONFIG = KAFKA_STATE / "server.properties"
KAFKA_CLUSTER_ID_FILE = KAFKA_STATE / "cluster-id"
KAFKA_LOG = LOG_DIR / "kafka.log"
KAFKA_JVM_ENV = "PERMITS_KAFKA_JVM_OPTIONS"
KAFKA_JVM_OPTIONS = (
    "-Xmx512m",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-XX:TieredStopAtLevel=1",
)
"""The broker's JVM flags. `TieredStopAtLevel=1` compiles with C1 only: a local broker lives for
minutes to hours, and C2's compiling was more than half of a fresh broker's CPU for its first
thousands of applications (5.5-5.9 against 2.75 ms an application), with the same 2.0 ms once
warm (docs/benchmarks.md, "Kafka's CPU per application"). PERMITS_KAFKA_JVM_OPTIONS
(space-separated) adds to them; a later flag overrides an earlier one
(`-XX:TieredStopAtLevel=4` brings C2 back)."""

FERRETDB_SRC = HERE / "ferretdb"
FERRETDB_BIN = LOCAL_DIR / "bin" / "ferretdb-local"
FERRETDB_LOG = LOG_DIR / "ferretdb.log"
FERRETDB_POOL_MAX_CONNS = 100

POSTGRES_VERSION = "15"
POSTGRES_BIN_ENV = "PERMITS_POSTGRES_BIN"
POSTGRES_USER = "postgres"
POSTGRES_DATABASE = "ferretdb"
POSTGRES_DIR = STATE_DIR / "postgresql"
POSTGRES_DATA = POSTGRES_DIR / "data"
POSTGRES_LOG = LOG_DIR / "postgres.log"
POSTGRES_MAX_CONNECTIONS = FERRETDB_POOL_MAX_CONNS + 20
POSTGRES_URL = f"postgres://{POSTGRES_USER}@{HOST}:{POSTGRES_PORT}/{POSTGRES_DATABASE}"
POSTGRES_SETTINGS_ENV = "PERMITS_POSTGRES_SETTINGS"
"""Extra server settings, `name=value` separated by spaces, for profiling only (for example
`shared_preload_libraries=pg_stat_statements`); unset for everything else."""
STORE_DEBUG_ADDR_ENV = "PERMITS_STORE_DEBUG_ADDR"
"""A loopback address where FerretDB serves Go's profiles (net/http/pprof); unset: none."""

MIN_JAVA_MAJOR = 11
MIN_GO_VERSION = (1, 24)
LOG_ROTATE_BYTES = 20 * 1024 * 1024
PROBE_TIMEOUT_S = 2.0


class ProbeError(Exception):
    """A server answered, but not with a valid protocol response."""


def say(message: str) -> None:
    """Progress goes to stderr so that `status` output on stdout stays parseable."""
    print(f"[infra] {message}", file=sys.stderr, flush=True)


def _rel(path: Path) -> str:
    """Paths in messages are shown relative to the repo: shorter, and machine-independent."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = 30) -> str:
    """The end of a log, to put the likely cause right into an error message."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _redact(url: str) -> str:
    """Hide a password in a connection URL before printing it."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def kafka_bootstrap() -> str:
    """The Kafka bootstrap address tests should use: the override, else the local one."""
    return os.environ.get(KAFKA_ENV) or KAFKA_BOOTSTRAP


def mongo_url() -> str:
    """The MongoDB URL tests should use: the override, else the local FerretDB."""
    return os.environ.get(MONGO_ENV) or MONGO_URL


# --------------------------------------------------------------------------- tools


def _require_tool(name: str, purpose: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InfraError(
            f"`{name}` was not found on PATH; it is needed to {purpose}. Install {install}."
        )
    return path


def _java() -> str:
    """Find java and check it is new enough for the Kafka 3.9 broker."""
    install = "a JDK 17 (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)"
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is not None and os.access(candidate, os.X_OK):
        java = str(candidate)
    else:
        java = _require_tool("java", "run Kafka", install)
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise InfraError(f"cannot tell the Java version from `{java} -version`:\n{result.stderr}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA_MAJOR:
        raise InfraError(
            f"Java {major} is too old for Kafka 3.9 (needs {MIN_JAVA_MAJOR}+). Install {install}."
        )
    return java


def _go() -> str:
    """Find go and check it can build FerretDB 1.24 without fetching a toolchain (no internet)."""
    install = "Go 1.24 or newer (https://go.dev/doc/install)"
    go = _require_tool("go", "build FerretDB", install)
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", result.stdout.strip())
    if match is None:
        raise InfraError(
            f"cannot tell the Go version from `go env GOVERSION`: {result.stdout or result.stderr}"
        )
    if (int(match.group(1)), int(match.group(2))) < MIN_GO_VERSION:
        raise InfraError(
            f"{result.stdout.strip()} is too old to build FerretDB 1.24.2. Install {install}."
        )
    return go


def _run_build(
    what: str,
    argv: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    identity: dict[str, Any] | None = None,
) -> None:
    """Run a build step with its output in a log; on failure show the end of that log.

    `identity` holds the Popen arguments that run it as another user (see _postgres_identity).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            input=stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            **(identity or {}),
        )
    if result.returncode != 0:
        raise InfraError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
            f"--- last lines of {_rel(log)} ---\n{_tail(log)}"
        )


# --------------------------------------------------------------------------- build


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kafka_libs_complete() -> bool:
    """The jars are complete when the manifest matches the current pom and every jar is there."""
    try:
        manifest = json.loads(KAFKA_LIBS_MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    jars = manifest.get("jars") if isinstance(manifest, dict) else None
    return (
        isinstance(manifest, dict)
        and manifest.get("pom_sha256") == _file_sha256(KAFKA_SRC / "pom.xml")
        and isinstance(jars, list)
        and bool(jars)
        and all((KAFKA_LIBS / str(jar)).is_file() for jar in jars)
    )


def build_kafka() -> None:
    """Copy the Kafka jars from Maven Central into .local/kafka/libs, unless already there."""
    if _kafka_libs_complete():
        return
    _java()
    mvn = _require_tool(
        "mvn", "download the Kafka jars", "Maven (Debian/Ubuntu: apt-get install maven)"
    )
    say("building Kafka jars with Maven (first run, ~1-2 min)...")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    KAFKA_LIBS.mkdir(parents=True)
    _run_build(
        "Maven download of the Kafka jars",
        [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(KAFKA_SRC / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={KAFKA_LIBS}",
        ],
        LOG_DIR / "build-kafka.log",
    )
    jars = sorted(p.name for p in KAFKA_LIBS.glob("*.jar"))
    if not any(jar.startswith("kafka_2.13-") for jar in jars):
        raise InfraError(
            f"Maven finished but no kafka_2.13 jar is in {_rel(KAFKA_LIBS)}; "
            f"see {_rel(LOG_DIR / 'build-kafka.log')}"
        )
    KAFKA_LIBS_MANIFEST.write_text(
        json.dumps({"pom_sha256": _file_sha256(KAFKA_SRC / "pom.xml"), "jars": jars}, indent=1)
    )
    say(f"Kafka jars ready ({len(jars)} jars in {_rel(KAFKA_LIBS)})")


def _ferretdb_sources() -> list[Path]:
    return [*FERRETDB_SRC.glob("*.go"), FERRETDB_SRC / "go.mod", FERRETDB_SRC / "go.sum"]


def _ferretdb_binary_fresh() -> bool:
    if not FERRETDB_BIN.is_file():
        return False
    built = FERRETDB_BIN.stat().st_mtime
    return all(src.stat().st_mtime < built for src in _ferretdb_sources())


def build_store() -> None:
    """Build the FerretDB wrapper into .local/bin, unless the binary is newer than its sources."""
    if _ferretdb_binary_fresh():
        return
    go = _go()
    say("building FerretDB 1.24.2 with Go (first run, ~1-2 min)...")
    FERRETDB_BIN.parent.mkdir(parents=True, exist_ok=True)
    partial = FERRETDB_BIN.with_name(FERRETDB_BIN.name + ".partial")
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    _run_build(
        "Go build of FerretDB",
        [go, "build", "-trimpath", "-buildvcs=false", "-o", str(partial), "."],
        LOG_DIR / "build-ferretdb.log",
        cwd=FERRETDB_SRC,
        env=env,
    )
    os.replace(partial, FERRETDB_BIN)
    say(f"FerretDB ready ({_rel(FERRETDB_BIN)})")


def _postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs: the override, else Debian's for version 15."""
    override = os.environ.get(POSTGRES_BIN_ENV)
    return Path(override) if override else Path(f"/usr/lib/postgresql/{POSTGRES_VERSION}/bin")


def _postgres_installed() -> bool:
    folder = _postgres_bin()
    return all(os.access(folder / tool, os.X_OK) for tool in ("initdb", "postgres", "pg_isready"))


def build_postgres() -> None:
    """Make sure PostgreSQL's server programs are there: installed from Debian's packages when
    missing and running as root, otherwise an error saying what to install."""
    if _postgres_installed():
        return
    folder = _postgres_bin()
    if os.environ.get(POSTGRES_BIN_ENV):
        raise InfraError(
            f"{POSTGRES_BIN_ENV}={folder} does not hold PostgreSQL's initdb, postgres and "
            "pg_isready programs"
        )
    install = (
        f"PostgreSQL {POSTGRES_VERSION} (Debian 12: apt-get install postgresql; elsewhere install "
        f"PostgreSQL {POSTGRES_VERSION} and set {POSTGRES_BIN_ENV} to the folder of its "
        "initdb and postgres programs)"
    )
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        raise InfraError(
            f"PostgreSQL {POSTGRES_VERSION} was not found in {folder}; the document store keeps "
            f"its data in it. Install {install}."
        )
    say(f"installing PostgreSQL {POSTGRES_VERSION} with apt-get (first run only, ~1 min)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run_build("apt-get update", [apt_get, "update"], LOG_DIR / "apt-update.log", env=env)
    _run_build(
        "apt-get install postgresql",
        [apt_get, "install", "-y", "--no-install-recommends", "postgresql"],
        LOG_DIR / "install-postgresql.log",
        env=env,
    )
    if not _postgres_installed():
        raise InfraError(
            f"apt-get installed `postgresql`, but {folder} still lacks its programs: this "
            f"system's PostgreSQL is not version {POSTGRES_VERSION}. Install {install}."
        )
    say(f"PostgreSQL {POSTGRES_VERSION} installed")


def _postgres_identity() -> dict[str, Any]:
    """Popen arguments that run PostgreSQL's programs as the `postgres` user when this tool runs
    as root (PostgreSQL refuses to run as root), else as the current user.

    The server is started this way rather than through `runuser`, which stays the parent of
    the program it runs: the pid this tool tracks, and kills in fault tests, is then the
    server itself, not a wrapper whose death would leave the server running.
    """
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise InfraError(
            f"there is no `{POSTGRES_USER}` user to run PostgreSQL as (it refuses to run as "
            "root); Debian's postgresql package creates it: apt-get install postgresql"
        ) from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _postgres_env() -> dict[str, str]:
    """The environment for PostgreSQL's programs, without PG* variables that would redirect them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _postgres_major(bin_dir: Path) -> str:
    result = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
    if match is None:
        raise InfraError(f"cannot tell the version of {bin_dir / 'postgres'}: {result.stdout}")
    return match.group(1)


def _postgres_folder(identity: dict[str, Any]) -> None:
    """Create .local/postgresql for the user PostgreSQL runs as, and check it can reach it."""
    POSTGRES_DIR.mkdir(parents=True, exist_ok=True)
    if identity:
        os.chown(POSTGRES_DIR, identity["user"], identity["group"])
    POSTGRES_DIR.chmod(0o700)
    probe = subprocess.run(
        ["test", "-w", str(POSTGRES_DIR), "-a", "-x", str(POSTGRES_DIR)], check=False, **identity
    )
    if probe.returncode != 0:
        raise InfraError(
            f"the `{POSTGRES_USER}` user cannot use {POSTGRES_DIR}: every folder above it must "
            "be searchable by that user (chmod o+x on each), or set PERMITS_MONGO_URL to use "
            "another store"
        )


def _postgres_init(bin_dir: Path, identity: dict[str, Any]) -> None:
    """Create the cluster and its `ferretdb` database once; a half-made one is made again."""
    version_file = POSTGRES_DATA / "PG_VERSION"
    if version_file.is_file():
        made_by = version_file.read_text().strip()
        running = _postgres_major(bin_dir)
        if made_by != running:
            raise InfraError(
                f"{_rel(POSTGRES_DATA)} was made by PostgreSQL {made_by}, but the programs in "
                f"{bin_dir} are PostgreSQL {running}. Delete {_rel(POSTGRES_DIR)} (the store "
                f"starts empty) or point {POSTGRES_BIN_ENV} at PostgreSQL {made_by}."
            )
        return
    if POSTGRES_DATA.exists():
        raise InfraError(
            f"{_rel(POSTGRES_DATA)} exists but is no PostgreSQL data folder; delete it"
        )
    partial = POSTGRES_DIR / "data.partial"
    shutil.rmtree(partial, ignore_errors=True)
    say(f"creating the PostgreSQL cluster in {_rel(POSTGRES_DATA)}")
    env = _postgres_env()
    _run_build(
        "initdb",
        [
            str(bin_dir / "initdb"),
            "--pgdata",
            str(partial),
            "--username",
            POSTGRES_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        ],
        LOG_DIR / "postgresql-initdb.log",
        cwd=POSTGRES_DIR,
        env=env,
        identity=identity,
    )
    create_log = LOG_DIR / "postgresql-createdb.log"
    _run_build(
        "creating the ferretdb database",
        [
            str(bin_dir / "postgres"),
            "--single",
            "-D",
            str(partial),
            "-c",
            "unix_socket_directories=",
            "postgres",
        ],
        create_log,
        cwd=POSTGRES_DIR,
        env=env,
        stdin=f"CREATE DATABASE {POSTGRES_DATABASE};\n".encode(),
        identity=identity,
    )
    if "ERROR:" in create_log.read_text(errors="replace"):
        raise InfraError(
            f"creating the {POSTGRES_DATABASE} database failed\n"
            f"--- last lines of {_rel(create_log)} ---\n{_tail(create_log)}"
        )
    os.replace(partial, POSTGRES_DATA)


# --------------------------------------------------------------------------- probes


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ProbeError("connection closed mid-response")
        data += chunk
    return bytes(data)


def probe_kafka(host: str = HOST, port: int = KAFKA_PORT) -> list[tuple[int, str, int]]:
    """Send a Kafka Metadata v0 request and return the brokers it lists.

    A listed broker means the node has finished start-up and registered itself,
    which an open TCP port alone does not show.
    """
    correlation_id = random.randint(1, 2**31 - 1)
    client_id = b"permits-infra"
    header = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    request = header + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 8 <= size <= 64 * 1024 * 1024:
            raise ProbeError(f"implausible Kafka response size {size}")
        body = _recv_exact(sock, size)
    try:
        got_id, broker_count = struct.unpack_from(">ii", body, 0)
        if got_id != correlation_id:
            raise ProbeError(f"correlation id {got_id} != {correlation_id}")
        brokers = []
        offset = 8
        for _ in range(broker_count):
            node_id, host_len = struct.unpack_from(">ih", body, offset)
            offset += 6
            broker_host = body[offset : offset + host_len].decode()
            offset += host_len
            (broker_port,) = struct.unpack_from(">i", body, offset)
            offset += 4
            brokers.append((node_id, broker_host, broker_port))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProbeError(f"malformed Kafka Metadata response: {exc}") from exc
    return brokers


def _bson_ping() -> bytes:
    """The BSON document {ping: 1, $db: "admin"}."""
    elements = b"\x10ping\x00" + struct.pack("<i", 1)
    elements += b"\x02$db\x00" + struct.pack("<i", len(b"admin") + 1) + b"admin\x00"
    return struct.pack("<i", 4 + len(elements) + 1) + elements + b"\x00"


_BSON_FIXED_SIZES = {
    0x01: 8,
    0x07: 12,
    0x08: 1,
    0x09: 8,
    0x0A: 0,
    0x10: 4,
    0x11: 8,
    0x12: 8,
    0x13: 16,
}


def _bson_number(document: bytes, key: str) -> float | None:
    """Read one top-level numeric or boolean field of a BSON document; enough for `ok`."""
    offset = 4
    end = struct.unpack_from("<i", document, 0)[0] - 1
    while offset < end:
        kind = document[offset]
        name_end = document.index(b"\x00", offset + 1)
        name = document[offset + 1 : name_end].decode()
        offset = name_end + 1
        if name == key:
            if kind == 0x01:
                return float(struct.unpack_from("<d", document, offset)[0])
            if kind == 0x10:
                return float(struct.unpack_from("<i", document, offset)[0])
            if kind == 0x12:
                return float(struct.unpack_from("<q", document, offset)[0])
            if kind == 0x08:
                return float(document[offset])
            return None
        if kind in _BSON_FIXED_SIZES:
            offset += _BSON_FIXED_SIZES[kind]
        elif kind in (0x02, 0x0D, 0x0E):
            offset += 4 + struct.unpack_from("<i", document, offset)[0]
        elif kind in (0x03, 0x04):
            offset += struct.unpack_from("<i", document, offset)[0]
        elif kind == 0x05:
            offset += 5 + struct.unpack_from("<i", document, offset)[0]
        else:
            return None
    return None


def probe_store(host: str = HOST, port: int = STORE_PORT) -> float:
    """Send a MongoDB OP_MSG ping and return its `ok` value (1.0 when the server is healthy)."""
    request_id = random.randint(1, 2**31 - 1)
    op_msg = 2013
    payload = struct.pack("<I", 0) + b"\x00" + _bson_ping()
    message = struct.pack("<iiii", 16 + len(payload), request_id, 0, op_msg) + payload
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
        sock.sendall(message)
        (length,) = struct.unpack("<i", _recv_exact(sock, 4))
        if not 21 <= length <= 48 * 1024 * 1024:
            raise ProbeError(f"implausible MongoDB message length {length}")
        reply = _recv_exact(sock, length - 4)
    try:
        _, response_to, opcode, _flags, section_kind = struct.unpack_from("<iiiIB", reply, 0)
        if opcode != op_msg or response_to != request_id or section_kind != 0:
            raise ProbeError(
                f"unexpected reply: opcode {opcode}, responseTo {response_to}, "
                f"section kind {section_kind}"
            )
        ok = _bson_number(reply[17:], "ok")
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ProbeError(f"malformed MongoDB reply: {exc}") from exc
    if ok is None:
        raise ProbeError("MongoDB reply has no `ok` field")
    return ok


def _kafka_ready() -> None:
    brokers = probe_kafka()
    if not any(port == KAFKA_PORT for _, _, port in brokers):
        raise ProbeError(f"broker not registered yet (metadata lists {brokers})")


def _store_ready() -> None:
    ok = probe_store()
    if ok != 1.0:
        raise ProbeError(f"ping answered ok: {ok}")


def _postgres_ready() -> None:
    """pg_isready: the server accepts connections (not starting up, recovering or stopping)."""
    if not _postgres_installed():
        raise ProbeError("PostgreSQL is not installed")
    result = subprocess.run(
        [
            str(_postgres_bin() / "pg_isready"),
            "--host",
            HOST,
            "--port",
            str(POSTGRES_PORT),
            "--dbname",
            POSTGRES_DATABASE,
            "--username",
            POSTGRES_USER,
            "--timeout",
            str(int(PROBE_TIMEOUT_S)),
        ],
        capture_output=True,
        text=True,
        env=_postgres_env(),
        check=False,
    )
    if result.returncode != 0:
        raise ProbeError(result.stdout.strip() or f"pg_isready exited {result.returncode}")


# --------------------------------------------------------------------------- processes

_children: dict[int, "subprocess.Popen[bytes]"] = {}


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\x00") if part]


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (killed, not yet reaped) counts as dead."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            _children.pop(pid, None)
            return True
        time.sleep(0.1)
    return False


def _port_free(port: int) -> bool:
    """Bind-test with SO_REUSEADDR, as the servers do: a listener blocks, TIME_WAIT does not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _port_free_soon(port: int, patience_seconds: float = 5.0) -> bool:
    """Wait briefly when no server listens: an outgoing connection may hold the port a moment."""
    deadline = time.monotonic() + patience_seconds
    while not _port_free(port):
        if _port_owner(port) is not None or time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
    return True


def _port_owner(port: int) -> str | None:
    """Best effort: which process listens on the port, from /proc (no lsof/ss needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    argv = _cmdline(int(proc.name)) or ["?"]
                    shown = (
                        " ".join(argv) if len(argv) <= 4 else " ".join([argv[0], "...", *argv[-2:]])
                    )
                    return f"pid {proc.name} ({shown})"
    return None


def _rotate_log(log: Path) -> None:
    """Keep one previous log once a log grows large; logs are appended across restarts."""
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))


@dataclass(frozen=True)
class _Service:
    """What differs between Kafka and the store; the lifecycle code is shared."""

    name: str
    label: str
    address: str
    ports: tuple[int, ...]
    env_var: str
    log: Path
    start_timeout: float
    stop_timeout: float
    build: Callable[[], None]
    prepare: Callable[[], tuple[list[str], Path]]
    owns: Callable[[list[str]], bool]
    ready: Callable[[], None]
    stop_signal: signal.Signals = signal.SIGTERM
    requires: str | None = None
    identity: Callable[[], dict[str, Any]] = dict

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    def override(self) -> str | None:
        return os.environ.get(self.env_var) or None


# --------------------------------------------------------------------------- kafka


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in unpadded URL-safe base64, not starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_cluster_id() -> str:
    """One cluster id for the life of .local; reuse the one a data dir was formatted with."""
    if KAFKA_CLUSTER_ID_FILE.is_file():
        return KAFKA_CLUSTER_ID_FILE.read_text().strip()
    cluster_id = _new_cluster_id()
    with contextlib.suppress(OSError):
        for line in (KAFKA_DATA / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                cluster_id = line.split("=", 1)[1].strip()
    KAFKA_CLUSTER_ID_FILE.write_text(cluster_id + "\n")
    return cluster_id


def _kafka_prepare() -> tuple[list[str], Path]:
    """Render server.properties, format the storage once, and return the broker command line."""
    java = _java()
    KAFKA_DATA.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    template = string.Template((KAFKA_SRC / "server.properties").read_text())
    config = template.substitute(
        host=HOST,
        broker_port=KAFKA_PORT,
        controller_port=KAFKA_CONTROLLER_PORT,
        data_dir=str(KAFKA_DATA),
    )
    if not KAFKA_CONFIG.is_file() or KAFKA_CONFIG.read_text() != config:
        KAFKA_CONFIG.write_text(config)
    jvm = [
        java,
        f"-Dkafka.logs.dir={LOG_DIR}",
        f"-Dlog4j.configuration={(KAFKA_SRC / 'log4j.properties').as_uri()}",
        "-cp",
        f"{KAFKA_LIBS}/*",
    ]
    if not (KAFKA_DATA / "meta.properties").is_file():
        cluster_id = _kafka_cluster_id()
        say(f"formatting Kafka storage in {_rel(KAFKA_DATA)} (cluster id {cluster_id})")
        _run_build(
            "Kafka storage format",
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(KAFKA_CONFIG),
                "--ignore-formatted",
            ],
            LOG_DIR / "kafka-format.log",
        )
    argv = [
        jvm[0],
        *kafka_jvm_options(),
        *jvm[1:],
        "kafka.Kafka",
        str(KAFKA_CONFIG),
    ]
    return argv, KAFKA_STATE


def kafka_jvm_options() -> list[str]:
    """The broker's JVM flags: the defaults, then PERMITS_KAFKA_JVM_OPTIONS (later ones win)."""
    return [*KAFKA_JVM_OPTIONS, *os.environ.get(KAFKA_JVM_ENV, "").split()]


def _kafka_owns(argv: list[str]) -> bool:
    return "kafka.Kafka" in argv and str(KAFKA_CONFIG) in argv


# --------------------------------------------------------------------------- store


def _store_prepare() -> tuple[list[str], Path]:
    argv = [
        str(FERRETDB_BIN),
        "-listen-addr",
        f"{HOST}:{STORE_PORT}",
        "-postgresql-url",
        POSTGRES_URL,
        "-pool-max-conns",
        str(FERRETDB_POOL_MAX_CONNS),
        "-log-level",
        "info",
    ]
    debug_addr = os.environ.get(STORE_DEBUG_ADDR_ENV, "").strip()
    if debug_addr:
        argv += ["-debug-addr", debug_addr]
    return argv, LOCAL_DIR


def _store_owns(argv: list[str]) -> bool:
    return bool(argv) and argv[0] == str(FERRETDB_BIN) and f"{HOST}:{STORE_PORT}" in argv


# --------------------------------------------------------------------------- postgres


def _shared_memory_attached(shmid: int) -> int:
    """How many processes still use a System V shared memory segment (0 once it is gone)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return 0
    for row in rows:
        fields = row.split()
        if len(fields) > 6 and fields[1] == str(shmid):
            return int(fields[6])
    return 0


def _postgres_clear_stale_lock() -> None:
    """After a crash or kill -9, make the data folder startable again.

    PostgreSQL leaves postmaster.pid behind. It ignores the file when that pid is dead, but
    refuses to start when the pid now belongs to some other process, and also while backends
    of the killed server still hold its shared memory (they exit on their own within moments
    of noticing their parent is gone). So: wait for those, then remove the lock file; the
    server then recovers from its write-ahead log at start.
    """
    lock = POSTGRES_DATA / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
    except FileNotFoundError:
        return
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    if pid is not None and _alive(pid) and _postgres_owns(_cmdline(pid) or []):
        raise InfraError(
            f"a PostgreSQL this tool did not start (pid {pid}) runs on {_rel(POSTGRES_DATA)}; "
            f"stop it first: {_postgres_bin() / 'pg_ctl'} stop -D {POSTGRES_DATA}"
        )
    shm = lines[6].split() if len(lines) > 6 else []
    if len(shm) == 2 and shm[1].isdigit():
        deadline = time.monotonic() + 30.0
        while _shared_memory_attached(int(shm[1])) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _shared_memory_attached(int(shm[1])):
            raise InfraError(
                "processes of a PostgreSQL that was killed still run on "
                f"{_rel(POSTGRES_DATA)} after 30 s; end them (ps -u {POSTGRES_USER}) and retry"
            )
    lock.unlink(missing_ok=True)
    say("PostgreSQL did not stop cleanly last time; it recovers from its log at start")


def _postgres_prepare() -> tuple[list[str], Path]:
    """Create the cluster on first use, clear what a crash left, and return the server's argv."""
    bin_dir = _postgres_bin()
    identity = _postgres_identity()
    _postgres_folder(identity)
    _postgres_init(bin_dir, identity)
    _postgres_clear_stale_lock()
    settings = {
        "listen_addresses": HOST,
        "port": str(POSTGRES_PORT),
        "unix_socket_directories": "",
        "max_connections": str(POSTGRES_MAX_CONNECTIONS),
        "log_line_prefix": "%m [%p] ",
        **_postgres_extra_settings(),
    }
    argv = [str(bin_dir / "postgres"), "-D", str(POSTGRES_DATA)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv, POSTGRES_DIR


def _postgres_extra_settings() -> dict[str, str]:
    """The settings of PERMITS_POSTGRES_SETTINGS; a clear error for a malformed one."""
    settings = {}
    for item in os.environ.get(POSTGRES_SETTINGS_ENV, "").split():
        name, equals, value = item.partition("=")
        if not equals or not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
            raise InfraError(
                f"{POSTGRES_SETTINGS_ENV}: {item!r} is not name=value "
                "(settings are separated by spaces)"
            )
        settings[name] = value
    return settings


def _postgres_owns(argv: list[str]) -> bool:
    return (
        len(argv) > 2
        and argv[0] == str(_postgres_bin() / "postgres")
        and argv[1:3] == ["-D", str(POSTGRES_DATA)]
    )


_SERVICES = {
    "kafka": _Service(
        name="kafka",
        label="Kafka 3.9.1",
        address=KAFKA_BOOTSTRAP,
        ports=(KAFKA_PORT, KAFKA_CONTROLLER_PORT),
        env_var=KAFKA_ENV,
        log=KAFKA_LOG,
        start_timeout=120.0,
        stop_timeout=30.0,
        build=build_kafka,
        prepare=_kafka_prepare,
        owns=_kafka_owns,
        ready=_kafka_ready,
    ),
    "postgres": _Service(
        name="postgres",
        label=f"PostgreSQL {POSTGRES_VERSION}",
        address=f"{HOST}:{POSTGRES_PORT}",
        ports=(POSTGRES_PORT,),
        env_var=MONGO_ENV,
        log=POSTGRES_LOG,
        start_timeout=120.0,
        stop_timeout=30.0,
        build=build_postgres,
        prepare=_postgres_prepare,
        owns=_postgres_owns,
        ready=_postgres_ready,
        stop_signal=signal.SIGINT,
        identity=_postgres_identity,
    ),
    "store": _Service(
        name="store",
        label="FerretDB 1.24.2",
        address=f"{HOST}:{STORE_PORT}",
        ports=(STORE_PORT,),
        env_var=MONGO_ENV,
        log=FERRETDB_LOG,
        start_timeout=30.0,
        stop_timeout=10.0,
        build=build_store,
        prepare=_store_prepare,
        owns=_store_owns,
        ready=_store_ready,
        requires="postgres",
    ),
}


def _select(which: str | None) -> list[_Service]:
    """None or "all" means every server; a server comes after the one it requires."""
    if which is None or which == "all":
        return list(_SERVICES.values())
    if which not in _SERVICES:
        raise InfraError(f"unknown service {which!r}; expected all, {', '.join(SERVICES)}")
    service = _SERVICES[which]
    return [*_select(service.requires), service] if service.requires else [service]


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise concurrent invocations (e.g. parallel test workers) on one machine."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "infra.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _our_pid(service: _Service) -> int | None:
    """The pid in our pid file, only if that process is alive and is the server we started."""
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    child = _children.get(pid)
    if child is not None and child.poll() is None:
        return pid
    argv = _cmdline(pid)
    for _ in range(10):
        # Right after execve the kernel briefly shows an empty cmdline; don't misjudge that.
        if argv or not _alive(pid):
            break
        time.sleep(0.05)
        argv = _cmdline(pid)
    if not argv or not _alive(pid) or not service.owns(argv):
        service.pid_file.unlink(missing_ok=True)
        return None
    return pid


def _answering(service: _Service) -> bool:
    try:
        service.ready()
    except (OSError, ProbeError):
        return False
    return True


def _build_all(services: Sequence[_Service]) -> None:
    """Build in parallel: the Maven download and the Go compile do not depend on each other."""
    errors: list[Exception] = []

    def run(service: _Service) -> None:
        try:
            service.build()
        except Exception as exc:  # re-raised in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,), name=f"build-{s.name}") for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _start(service: _Service) -> int:
    """Start the server unless ours already runs; refuse if a foreign process holds its port."""
    pid = _our_pid(service)
    if pid is not None:
        return pid
    for port in service.ports:
        if not _port_free_soon(port):
            owner = _port_owner(port)
            held = (
                f"is already in use by {owner}, which this tool did not start"
                if owner
                else "is held by a connection of another process (no server listens on it); "
                "pick a port below the kernel's ephemeral range"
            )
            raise InfraError(
                f"port {port} ({service.label}) {held}. "
                f"Stop it, or set {service.env_var} to use an existing server."
            )
    argv, cwd = service.prepare()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    _rotate_log(service.log)
    say(f"starting {service.label} on {service.address} (log: {_rel(service.log)})")
    with service.log.open("ab") as out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"\n=== {stamp} infra.py starts {service.label} ===\n".encode())
        out.flush()
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **service.identity(),
        )
    _children[child.pid] = child
    service.pid_file.write_text(f"{child.pid}\n")
    return child.pid


def _wait_ready(service: _Service, pid: int) -> None:
    """Poll with real protocol requests until the server answers, it dies, or time runs out."""
    started = time.monotonic()
    deadline = started + service.start_timeout
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if not _alive(pid):
            service.pid_file.unlink(missing_ok=True)
            raise InfraError(
                f"{service.label} exited during start-up; see {_rel(service.log)}\n"
                f"--- last lines of {_rel(service.log)} ---\n{_tail(service.log)}"
            )
        try:
            service.ready()
        except (OSError, ProbeError) as exc:
            last_problem = str(exc) or type(exc).__name__
            time.sleep(0.3)
            continue
        took = time.monotonic() - started
        say(f"{service.label} ready on {service.address} (pid {pid}, {took:.1f} s)")
        return
    raise InfraError(
        f"{service.label} (pid {pid}) did not answer on {service.address} "
        f"within {service.start_timeout:.0f} s "
        f"(last: {last_problem}); it is left running, see {_rel(service.log)}\n"
        f"--- last lines of {_rel(service.log)} ---\n{_tail(service.log)}"
    )


def _stop(service: _Service, sig: signal.Signals, timeout: float) -> bool:
    """Signal our process and wait for it to go; SIGTERM escalates to SIGKILL after the timeout."""
    pid = _our_pid(service)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if not _wait_dead(pid, timeout) and sig != signal.SIGKILL:
        say(f"{service.label} (pid {pid}) did not stop within {timeout:.0f} s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_dead(pid, 10.0)
    if _alive(pid):
        raise InfraError(f"{service.label} (pid {pid}) is still alive after SIGKILL")
    service.pid_file.unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------- API


@dataclass(frozen=True)
class ServiceStatus:
    """One service as `status` reports it."""

    name: str
    state: str
    pid: int | None
    address: str

    def line(self) -> str:
        pid = str(self.pid) if self.pid is not None else "-"
        return f"{self.name:<8} {self.state:<24} pid {pid:<8} {self.address}"


def build(which: str | None = None) -> None:
    """Build and cache the artefacts only (also ignoring the env overrides: it was asked for)."""
    with _lock():
        _build_all(_select(which))


def up(which: str | None = None) -> list[str]:
    """Build if needed, start, and return once each server answers real protocol requests.

    Returns the names of the services this call started (empty if all were already
    running or overridden), so a caller can stop exactly those and leave the rest as found.
    """
    services = []
    for service in _select(which):
        override = service.override()
        if override:
            shown = _redact(override)
            say(f"{service.name}: using {service.env_var}={shown}; not starting {service.label}")
        else:
            services.append(service)
    if not services:
        return []
    with _lock():
        _build_all(services)
        pids: dict[str, int] = {}
        ready: set[str] = set()
        for service in services:
            required = service.requires
            if required in pids and required not in ready:
                _wait_ready(_SERVICES[required], pids[required])
                ready.add(required)
            pid = _our_pid(service)
            if pid is not None and _answering(service):
                say(f"{service.label} already running on {service.address} (pid {pid})")
                continue
            pids[service.name] = _start(service)
        for service in services:
            if service.name in pids and service.name not in ready:
                _wait_ready(service, pids[service.name])
    return list(pids)


def down(which: str | None = None) -> None:
    """Stop the servers this tool started, nothing else: SIGTERM, then SIGKILL after a timeout."""
    with _lock():
        for service in reversed(_select(which)):
            pid = _our_pid(service)
            if pid is None:
                say(f"{service.label}: not running")
                continue
            say(f"stopping {service.label} (pid {pid})...")
            _stop(service, service.stop_signal, service.stop_timeout)
            say(f"{service.label} stopped")


def kill(which: str) -> None:
    """SIGKILL our server, as a crash would (fault injection); `up` restarts it on its data.

    `store` kills FerretDB and its PostgreSQL both."""
    with _lock():
        for service in reversed(_select(which)):
            pid = _our_pid(service)
            if pid is None or not _stop(service, signal.SIGKILL, 10.0):
                raise InfraError(
                    f"{service.label} is not running (no process started by this tool)"
                )
            say(f"{service.label} (pid {pid}) killed with SIGKILL")


def status() -> list[ServiceStatus]:
    """Report each service: running (ours), external (env override), or stopped."""
    result = []
    for service in _SERVICES.values():
        pid = _our_pid(service)
        override = service.override()
        if pid is not None:
            state = "running" if _answering(service) else "running (not answering)"
            result.append(ServiceStatus(service.name, state, pid, service.address))
        elif override:
            result.append(
                ServiceStatus(
                    service.name, "external", None, f"{_redact(override)} ({service.env_var})"
                )
            )
        else:
            result.append(ServiceStatus(service.name, "stopped", None, service.address))
    return result


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Local Kafka + FerretDB without Docker (see deploy/local/README.md)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "build if needed, start and wait until answering"),
        ("down", "stop the servers this tool started"),
        ("build", "only build/cache the artefacts"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("which", nargs="?", choices=("all", *SERVICES))
    status_parser = commands.add_parser("status", help="show state, pid and address of each server")
    status_parser.add_argument(
        "--quiet-if-running",
        action="store_true",
        help="print nothing and exit 0 if every server answers; else print status and exit 3",
    )
    kill_parser = commands.add_parser("kill", help="SIGKILL one server (fault injection)")
    kill_parser.add_argument("which", choices=SERVICES)
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            up(args.which)
        elif args.command == "down":
            down(args.which)
        elif args.command == "build":
            build(args.which)
        elif args.command == "kill":
            kill(args.which)
        else:
            entries = status()
            all_up = all(entry.state in ("running", "external") for entry in entries)
            if args.quiet_if_running and all_up:
                return 0
            for entry in entries:
                print(entry.line())
            if args.quiet_if_running:
                return 3
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
