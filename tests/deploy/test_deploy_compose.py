"""docker-compose.yml parses and holds together: healthchecks, start order, files it mounts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
import yaml

from permits_intake.entrypoints.schemas import CalendarIn

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
EXPECTED_SERVICES = {
    "kafka",
    "mongo",
    "intake",
    "issuance",
    "rights",
    "notify",
    "audit",
    "console",
    "production-centre",
    "sms",
    "smtp",
    "prometheus",
    "grafana",
}
ENTRY_POINTS = {
    "production-centre": ["python", "-m", "permits_issuance.simulator"],
    "sms": ["python", "-m", "permits_notify.simulators", "sms"],
    "smtp": ["python", "-m", "permits_notify.simulators", "smtp"],
}
SIMULATOR_PORTS = {"production-centre": 8010, "sms": 8011, "smtp": 8025}
# The services with data of their own (Kafka and MongoDB), then with the console, which has none.
PORTS = {"intake": 8001, "issuance": 8002, "rights": 8003, "notify": 8004, "audit": 8005}
WEB_PORTS = {**PORTS, "console": 8000}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def test_compose_names_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == EXPECTED_SERVICES


def test_infrastructure_images_are_the_chosen_ones(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["mongo"]["image"] == "mongo:7"
    assert "--replSet" in services["mongo"]["command"]
    mongo_check = " ".join(services["mongo"]["healthcheck"]["test"])
    assert "rs.initiate" in mongo_check
    for name in PORTS:
        url = services[name]["environment"]["PERMITS_MONGO_URL"]
        assert "replicaSet=rs0" in url


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_dependencies_wait_until_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long form with a condition"
        for dependency, rule in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule == {"condition": "service_healthy"}, f"{name} → {dependency}"
    for name in PORTS:
        assert {"kafka", "mongo"} <= set(services[name]["depends_on"]), name
    assert set(services["console"]["depends_on"]) == {"intake", "rights"}
    assert services["console"]["environment"]["PERMITS_INTAKE_URL"] == "http://intake:8001"
    assert services["console"]["environment"]["PERMITS_RIGHTS_URL"] == "http://rights:8003"


def test_builds_point_at_existing_dockerfiles(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" not in service:
            assert ":" in service["image"], f"{name}: pin the image tag"
            continue
        context = REPO / service["build"]["context"]
        assert context.is_dir(), name
        assert (context / service["build"]["dockerfile"]).is_file(), name


def test_services_and_simulators_run_their_entry_points(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, command in ENTRY_POINTS.items():
        given = services[name]["command"]
        assert given[: len(command)] == command
        # Simulators listen on loopback unless told otherwise: other containers must reach them.
        assert given[given.index("--host") + 1] == "0.0.0.0", name
        assert given[given.index("--port") + 1] == str(SIMULATOR_PORTS[name]), name
    for name, port in WEB_PORTS.items():
        dockerfile = REPO / services[name]["build"]["dockerfile"]
        assert f'CMD ["python", "-m", "permits_{name}"]' in dockerfile.read_text()
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"]
        assert str(port) in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["environment"]["PERMITS_HOST"] == "0.0.0.0"


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "deploy/monitoring/prometheus/prometheus.yml").read_text())
    targets = {
        target for job in config["scrape_configs"] for static in job["static_configs"]
        for target in static["targets"]
    }  # fmt: skip
    assert {f"{name}:{port}" for name, port in WEB_PORTS.items()} <= targets
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {f"permits-{name}" for name in WEB_PORTS} <= jobs, "alerts match up{job=~'permits-.*'}"
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_grafana_provisions_the_datasource_and_dashboard() -> None:
    provisioning = REPO / "deploy/monitoring/grafana/provisioning"
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards/permits.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_variable_compose_reads_is_documented_in_env_example(
    compose: dict[str, Any],
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_readme_calendar_example_is_a_real_arrangement() -> None:
    """The operator's example body loads as it is: intake's schema, the official 2026 dates."""
    readme = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    body = CalendarIn.model_validate(json.loads(block.group(1)))
    assert len(body.holidays) == 33
    assert len(body.workdays) == 6
    for day in body.holidays:
        assert chinese_calendar.is_holiday(day), day
    for day in body.workdays:
        assert chinese_calendar.is_workday(day), day
        assert day.weekday() >= 5, "make-up working days fall on weekends"
    assert '-X PUT "http://127.0.0.1:8001/api/v1/calendar/2026"' in readme
