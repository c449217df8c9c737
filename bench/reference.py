"""The reference server of the HTTP benchmarks: a bare FastAPI app with one route, no middleware.

It is served the way the services are served, so the gap between it and a service's own
`/healthz` is what the service's shared HTTP stack (middleware, auth, metrics) costs per
request, and the gap to an endpoint is what the endpoint itself costs.

    python -m bench.reference <port>
"""

from __future__ import annotations

import sys

from fastapi import FastAPI


def build_app() -> FastAPI:
    """One route, the same path and answer as the services' `/healthz`."""
    app = FastAPI(title="bench reference")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    from permits_common.web.app import serve

    serve(build_app(), "127.0.0.1", int(sys.argv[1]))
