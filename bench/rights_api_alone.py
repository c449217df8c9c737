"""The rights API served as a process of its own, without the Faust worker: what verification
would reach if the HTTP server did not share its process (and GIL) with the worker's consumer.
Benchmarks only, never deployed: the register is replayed from the changelog topic by the
service's own plain consumer and every verification is audited as in the service, but no card
event is consumed, so nothing keeps the register current but that changelog.

    python -m bench.rights_api_alone     (the settings of `python -m permits_rights`)
"""

from __future__ import annotations

from permits_common.logs import configure_logging
from permits_common.web.app import runtime_lifespan, serve
from permits_rights.config import RightsSettings
from permits_rights.main import build_api
from permits_rights.service.runtime import Runtime

if __name__ == "__main__":
    settings = RightsSettings()
    configure_logging(settings.log_level, settings.json_logs)
    runtime = Runtime(settings)
    api = build_api(runtime)
    api.router.lifespan_context = runtime_lifespan(runtime)
    serve(api, settings.host, settings.rights_port)
