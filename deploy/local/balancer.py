"""A small round-robin TCP balancer for running several replicas of a service on one machine.

    python deploy/local/balancer.py --port 8001 --backend 127.0.0.1:8041 --backend 127.0.0.1:8042

Each new client connection goes to the next backend in turn; a backend that refuses the
connection (a replica that crashed or is restarting) is skipped, so clients see a failure only
when no replica answers. Connections are piped byte for byte (HTTP keep-alive included), as a
Kubernetes Service does for the pods behind it. Development and tests only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import sys
from collections.abc import Sequence

CONNECT_TIMEOUT_S = 2.0
CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class Balancer:
    """Round-robin over backends, skipping those that refuse a connection."""

    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        self.backends = list(backends)
        self._turn = itertools.cycle(range(len(self.backends)))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            host, port = self.backends[next(self._turn)]
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
                )
        return None

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:
            client_w.close()
            return
        backend_r, backend_w = backend
        await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))


async def serve(host: str, port: int, backends: Sequence[tuple[str, int]]) -> None:
    balancer = Balancer(backends)
    server = await asyncio.start_server(balancer.handle, host, port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", action="append", type=_address, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
