"""`python -m permits_issuance.simulator [--port 8010] [--delay 2] [--failure-rate 0.1]`."""

from __future__ import annotations

import argparse

import uvicorn

from permits_common.logs import configure_logging
from permits_issuance.simulator.app import SecretSettings, SimulatorSettings, build_simulator


def main() -> None:
    """Flags override the `PERMITS_PRODUCTION_SIMULATOR_*` environment."""
    settings = SimulatorSettings()
    parser = argparse.ArgumentParser(description="Card production centre simulator")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--delay", type=float, default=settings.delay_seconds)
    parser.add_argument("--failure-rate", type=float, default=settings.failure_rate)
    parser.add_argument(
        "--callback-failure-rate", type=float, default=settings.callback_failure_rate
    )
    args = parser.parse_args()
    chosen = SimulatorSettings(
        host=args.host,
        port=args.port,
        delay_seconds=args.delay,
        failure_rate=args.failure_rate,
        callback_failure_rate=args.callback_failure_rate,
    )
    configure_logging()
    secret = SecretSettings().production_callback_secret.get_secret_value().encode()
    uvicorn.run(
        build_simulator(chosen, secret),
        host=chosen.host,
        port=chosen.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
