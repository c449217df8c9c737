"""Schemathesis with every check against a running service's own OpenAPI document.

The command line tool is run as a separate process (`schemathesis run --checks all`), so what
the suite checks is exactly what an operator trying the API with that tool would see: every
phase (explicit examples, the coverage cases built from the schema's constraints, random
fuzzing, stateful sequences), positive and negative data, undocumented status codes and content
types, missing authentication, methods a path does not have. The number of generated cases per
operation is capped so the whole suite stays quick on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

MAX_EXAMPLES = 12
RUN_SECONDS = 240


@dataclass(frozen=True)
class Conformance:
    """What schemathesis may call, and with which token.

    `token` goes with every request; `tokens` overrides it for some operations, keyed by
    (METHOD, path template); `excluded` operations are left out (they would change state shared
    with other tests; each has its own tests); `rules` are operations whose schema-valid
    requests may still fail a rule no JSON Schema can state (a date inside the year of the
    path, a person's eligibility): for them a 422 problem is an accepted answer to valid data.
    """

    token: str
    tokens: Mapping[tuple[str, str], str] = field(default_factory=dict)
    excluded: Sequence[tuple[str, str]] = ()
    rules: Sequence[tuple[str, str]] = ()
    max_examples: int = MAX_EXAMPLES


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(conformance: Conformance) -> str:
    """A schemathesis.toml: the default token for everything, the exceptions per operation."""
    lines = ["[headers]", f"Authorization = {_toml_string('Bearer ' + conformance.token)}", ""]
    operations = {*conformance.tokens, *conformance.excluded, *conformance.rules}
    for method, path in sorted(operations):
        lines += [
            "[[operations]]",
            f"include-name = {_toml_string(f'{method} {path}')}",
        ]
        if (method, path) in conformance.excluded:
            lines.append("enabled = false")
        if (method, path) in conformance.tokens:
            token = "Bearer " + conformance.tokens[(method, path)]
            lines.append(f"headers = {{ Authorization = {_toml_string(token)} }}")
        if (method, path) in conformance.rules:
            lines.append(
                'checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", '
                '"404", "409", "422", "429", "5xx"]'
            )
        lines.append("")
    return "\n".join(lines)


def command(base_url: str, conformance: Conformance, config: Path) -> list[str]:
    """The schemathesis command line: all checks, every phase, a bounded number of cases."""
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(conformance.max_examples),
        "--workers",
        "1",
        "--seed",
        "17",
        "--generation-database",
        "none",
        "--request-timeout",
        "15",
        "--suppress-health-check",
        "all",
        "--warnings",
        "off",
    ]


async def assert_conforms(base_url: str, conformance: Conformance, workdir: Path) -> int:
    """Run schemathesis against `base_url`; fail with its report unless every check passes.

    Returns how many operations it tested."""
    config = workdir / "schemathesis.toml"
    config.write_text(config_text(conformance), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *command(base_url, conformance, config),
        cwd=workdir,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"schemathesis took longer than {RUN_SECONDS} s") from None
    report = output.decode(errors="replace")
    assert process.returncode == 0, f"schemathesis found problems:\n{report}"
    selected = re.search(r"Operations:\s+(\d+) selected", report)
    assert selected is not None, report
    return int(selected.group(1))


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs over real HTTP on an ephemeral port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def service_process(
    module: str, env: Mapping[str, str], port: int, log: Path, within: float = 90.0
) -> AsyncIterator[str]:
    """`python -m <module>` as a real process, until `/readyz` answers 200; stopped with
    SIGTERM afterwards (SIGKILL if it is still running 20 s later)."""
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=dict(env), stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
                    raise AssertionError(f"{module} did not become ready:\n{tail}")
                await asyncio.sleep(0.2)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
