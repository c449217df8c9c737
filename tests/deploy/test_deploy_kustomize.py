"""The kustomize overlays build, validate against the Kubernetes schemas and follow our rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from permits_common.domain.agencies import Agency
from permits_common.events import topics
from tests.deploy.kustomize_tool import OVERLAYS, is_custom

Resource = dict[str, Any]

KUBERNETES_VERSION = "1.33.0"
SERVICES = ("intake", "issuance", "rights", "notify", "audit")
# The console owns no data: no Kafka, no MongoDB, only the services' APIs.
WORKLOADS = (*SERVICES, "console")
SERVICE_DEPLOYMENTS = {f"permits-{workload}" for workload in WORKLOADS}
AUTOSCALED = ("intake", "rights")
RIGHTS_TOPICS = {topics.rights_topic(agency) for agency in Agency}
# Who writes what: the issue's security section and docs/architecture.md, "Who owns what".
EXPECTED_WRITES = {
    "intake": {
        topics.APPLICATIONS,
        topics.CARDS,
        topics.CALENDAR,
        topics.AUDIT,
        topics.DEADLETTER,
    },
    "issuance": {topics.APPLICATIONS, topics.CARDS, topics.SLA, topics.DEADLETTER},
    "rights": RIGHTS_TOPICS | {topics.AUDIT, topics.DEADLETTER},
    "notify": {topics.NOTIFICATIONS, topics.DEADLETTER},
    "audit": {topics.DEADLETTER},
}
EXPECTED_READS = {
    "intake": {topics.APPLICATIONS, topics.SLA, topics.CARDS},
    "issuance": {topics.APPLICATIONS, topics.CARDS, topics.CALENDAR},
    "rights": {topics.CARDS},
    "notify": {topics.APPLICATIONS, topics.SLA, topics.CARDS},
    "audit": {topics.AUDIT},
}
SECRET_LOOKING = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|MONGO_URL", re.IGNORECASE)


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def generated(resources: list[Resource], kind: str, prefix: str) -> Resource:
    """A generated ConfigMap or Secret, whose name carries a content hash."""
    matches = [
        r
        for name, r in of_kind(resources, kind).items()
        if re.fullmatch(rf"{re.escape(prefix)}-[a-z0-9]{{10}}", name)
    ]
    assert len(matches) == 1, f"expected one {kind} {prefix}-<hash>"
    return matches[0]


def container(deployment: Resource) -> Resource:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Resource = containers[0]
    return result


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Resource]]) -> list[Resource]:
    resources: list[Resource] = rendered[request.param]
    return resources


def test_every_overlay_builds_into_named_resources(overlay: list[Resource]) -> None:
    assert len(overlay) > 40
    for resource in overlay:
        assert resource["apiVersion"]
        assert resource["kind"]
        assert resource["metadata"]["name"]
    namespaces = {r["metadata"].get("namespace") for r in overlay if r["kind"] != "Namespace"}
    assert len(namespaces) == 1, "every resource lands in the overlay's namespace"


def test_builtin_resources_validate_against_the_kubernetes_schemas(
    overlay: list[Resource],
) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed: add it to the root dev dependency group",
    )
    builtin = [r for r in overlay if not is_custom(r)]
    assert builtin
    for resource in builtin:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{resource['kind']}/{resource['metadata']['name']}: {exc.message}")


def check_kafka_topic(spec: Resource) -> None:
    assert isinstance(spec["topicName"], str)
    assert isinstance(spec["partitions"], int)
    assert spec["partitions"] >= 1
    assert isinstance(spec["replicas"], int)
    assert isinstance(spec["config"], dict)


def check_kafka_user(spec: Resource) -> None:
    assert spec["authentication"]["type"] in {"scram-sha-512", "tls"}
    assert spec["authorization"]["type"] == "simple"
    for acl in spec["authorization"]["acls"]:
        assert acl["resource"]["type"] in {"topic", "group", "cluster", "transactionalId"}
        assert acl["resource"]["patternType"] in {"literal", "prefix"}
        assert acl["operations"]
        assert set(acl["operations"]) <= {
            "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
            "AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All",
        }  # fmt: skip


def check_service_monitor(spec: Resource) -> None:
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert endpoint["port"]
        assert endpoint["path"] == "/metrics"
        # Our metrics carry a `service` label that the target label must not overwrite.
        assert endpoint["honorLabels"] is True


def check_prometheus_rule(spec: Resource) -> None:
    for group in spec["groups"]:
        assert group["name"]
        for rule in group["rules"]:
            assert rule["alert"]
            assert rule["expr"]
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"]


CUSTOM_CHECKS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): check_kafka_topic,
    ("kafka.strimzi.io/v1", "KafkaUser"): check_kafka_user,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): check_service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): check_prometheus_rule,
}


def test_custom_resources_have_the_fields_their_operators_require(
    overlay: list[Resource],
) -> None:
    for resource in filter(is_custom, overlay):
        key = (resource["apiVersion"], resource["kind"])
        assert key in CUSTOM_CHECKS, f"no structural check for {key}"
        name = resource["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name
        if resource["kind"].startswith("Kafka"):
            assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "permits-kafka"
        CUSTOM_CHECKS[key](resource["spec"])


def test_each_service_has_its_workload_resources(overlay: list[Resource]) -> None:
    deployments = of_kind(overlay, "Deployment")
    hpas = of_kind(overlay, "HorizontalPodAutoscaler")
    for service in WORKLOADS:
        name = f"permits-{service}"
        labels = {"app.kubernetes.io/name": name}
        assert name in deployments
        assert deployments[name]["spec"]["selector"]["matchLabels"] == labels
        assert of_kind(overlay, "Service")[name]["spec"]["selector"] == labels
        assert name in of_kind(overlay, "ServiceAccount")
        assert (
            of_kind(overlay, "PodDisruptionBudget")[name]["spec"]["selector"]["matchLabels"]
            == labels
        )
        assert of_kind(overlay, "ServiceMonitor")[name]["spec"]["selector"]["matchLabels"] == labels
        assert (
            of_kind(overlay, "NetworkPolicy")[name]["spec"]["podSelector"]["matchLabels"] == labels
        )
        generated(overlay, "ConfigMap", name)
        if service in AUTOSCALED:
            target = hpas[name]["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) == ("Deployment", name)
            assert "replicas" not in deployments[name]["spec"], "the HPA owns the replica count"
        else:
            assert name not in hpas
    assert set(hpas) == {f"permits-{service}" for service in AUTOSCALED}


def test_pods_run_hardened(overlay: list[Resource]) -> None:
    accounts = of_kind(overlay, "ServiceAccount")
    for name, deployment in of_kind(overlay, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        if name in SERVICE_DEPLOYMENTS:
            assert pod["serviceAccountName"] in accounts, name
        assert pod["automountServiceAccountToken"] is False, name
        app = container(deployment)
        security = app["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in security["capabilities"], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(app["resources"][bound]), name
        if name in SERVICE_DEPLOYMENTS:
            assert app["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert app["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        else:  # the development simulators
            assert app["readinessProbe"]
            assert app["livenessProbe"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        tmp = next(m for m in app["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in volumes[tmp["name"]], name


def test_secrets_are_referenced_never_inlined(overlay: list[Resource]) -> None:
    assert not of_kind(overlay, "Secret"), "Secrets are created outside git"
    for configmap in of_kind(overlay, "ConfigMap").values():
        for key in configmap.get("data", {}):
            assert not SECRET_LOOKING.search(key) or key.endswith("_USERNAME"), key
    for name, deployment in of_kind(overlay, "Deployment").items():
        app = container(deployment)
        if name in SERVICE_DEPLOYMENTS:
            assert any("secretRef" in source for source in app["envFrom"]), name
        secret_env = set()
        for variable in app.get("env", []):
            if "valueFrom" in variable:
                assert "secretKeyRef" in variable["valueFrom"], variable["name"]
                secret_env.add(variable["name"])
            elif SECRET_LOOKING.search(variable["name"]):
                # Only a template of secret references, expanded by the kubelet.
                references = set(re.findall(r"\$\(([A-Z_]+)\)", variable["value"]))
                assert references & secret_env, variable["name"]


def platform_settings(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = generated(resources, "ConfigMap", "permits-platform")["data"]
    return data


def test_env_templates_refer_to_defined_variables(overlay: list[Resource]) -> None:
    configmaps = {
        r["metadata"]["name"]: r.get("data", {}) for r in of_kind(overlay, "ConfigMap").values()
    }
    for name, deployment in of_kind(overlay, "Deployment").items():
        app = container(deployment)
        known = set()
        for source in app.get("envFrom", []):
            if "configMapRef" in source:
                known |= set(configmaps[source["configMapRef"]["name"]])
        for variable in app.get("env", []):
            for reference in re.findall(r"\$\(([A-Za-z_]+)\)", variable.get("value", "")):
                assert reference in known, f"{name}: $({reference}) is not defined before use"
            known.add(variable["name"])


def test_production_talks_tls_and_scram_to_kafka_and_tls_to_mongodb(
    rendered: dict[str, list[Resource]],
) -> None:
    prod = rendered["prod"]
    settings = platform_settings(prod)
    assert settings["PERMITS_ENV"] == "production"
    assert settings["PERMITS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["PERMITS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert settings["PERMITS_MONGO_TLS"] == "true"
    assert "tls=true" in settings["MONGO_OPTIONS"]
    assert len(settings["MONGO_HOSTS"].split(",")) == 3, "a three-member replica set"
    users = of_kind(prod, "KafkaUser")
    for service in SERVICES:
        name = f"permits-{service}"
        deployment = of_kind(prod, "Deployment")[name]
        app = container(deployment)
        own = generated(prod, "ConfigMap", name)["data"]
        assert own["PERMITS_KAFKA_SASL_USERNAME"] == name
        assert users[name]["spec"]["authentication"]["type"] == "scram-sha-512"
        password = next(v for v in app["env"] if v["name"] == "PERMITS_KAFKA_SASL_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"] == {"name": name, "key": "password"}
        mounts = {m["mountPath"] for m in app["volumeMounts"]}
        for ca_file in (settings["PERMITS_KAFKA_CA_FILE"], settings["PERMITS_MONGO_CA_FILE"]):
            assert ca_file.rpartition("/")[0] in mounts, f"{name} lacks {ca_file}"
    console = container(of_kind(prod, "Deployment")["permits-console"])
    assert {m["mountPath"] for m in console["volumeMounts"]} == {"/tmp"}, "no CA it does not use"
    assert "env" not in console, "no Kafka or MongoDB credentials"


def test_the_console_finds_the_services_and_counts_applicants_behind_the_ingress(
    overlay: list[Resource],
) -> None:
    settings = generated(overlay, "ConfigMap", "permits-console")["data"]
    services = of_kind(overlay, "Service")
    for variable, service in (("PERMITS_INTAKE_URL", "intake"), ("PERMITS_RIGHTS_URL", "rights")):
        port = services[f"permits-{service}"]["spec"]["ports"][0]["port"]
        assert settings[variable] == f"http://permits-{service}:{port}"
    # Trusting every sender's X-Forwarded-For is safe only while the ingress controller and
    # Prometheus are the only ones let in (test_network_policies_start_from_deny_...).
    assert settings["PERMITS_CONSOLE_TRUSTED_PROXIES"] == "*"


def test_development_overlay_uses_plain_listeners_and_development_mode(
    rendered: dict[str, list[Resource]],
) -> None:
    settings = platform_settings(rendered["dev"])
    assert settings["PERMITS_ENV"] == "development"
    assert settings["PERMITS_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "replicaSet=" in settings["MONGO_OPTIONS"]
    assert not of_kind(rendered["dev"], "KafkaUser")


def acl_grants(user: Resource, operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic"
        and acl["resource"]["patternType"] == "literal"
        and operation in acl["operations"]
    }


def test_each_service_writes_only_its_own_topics(rendered: dict[str, list[Resource]]) -> None:
    users = of_kind(rendered["prod"], "KafkaUser")
    for service in SERVICES:
        user = users[f"permits-{service}"]
        assert acl_grants(user, "Write") == EXPECTED_WRITES[service], service
        assert acl_grants(user, "Read") == EXPECTED_READS[service], service
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["name"] != "*", service
            if resource["patternType"] == "prefix":
                # Only Faust's internal topics, named after the service's own app id.
                assert resource["name"] == f"permits-{service}-", service
            if resource["type"] == "group":
                assert resource["name"] == f"permits-{service}", service


def test_each_agency_reads_only_its_own_feed(rendered: dict[str, list[Resource]]) -> None:
    users = of_kind(rendered["prod"], "KafkaUser")
    for agency in Agency:
        user = users[f"agency-{agency.value.replace('_', '-')}"]
        assert acl_grants(user, "Read") == {topics.rights_topic(agency)}
        operations = {
            op for acl in user["spec"]["authorization"]["acls"] for op in acl["operations"]
        }
        assert operations <= {"Read", "Describe"}, agency
    assert len(users) == len(SERVICES) + len(Agency)


def test_network_policies_start_from_deny_and_open_only_what_is_needed(
    overlay: list[Resource],
) -> None:
    policies = of_kind(overlay, "NetworkPolicy")
    deny = policies["permits-default-deny"]["spec"]
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "permits"}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    for service in WORKLOADS:
        spec = policies[f"permits-{service}"]["spec"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        namespaces, pods = set(), set()
        for rule in spec["ingress"]:
            assert rule["from"], "no rule lets everyone in"
            assert rule["ports"], "no rule opens every port"
            for peer in rule["from"]:
                if "podSelector" in peer:
                    pods.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                else:
                    labels = peer["namespaceSelector"]["matchLabels"]
                    namespaces.add(labels["kubernetes.io/metadata.name"])
        # Clerks and applicants (console, intake), agencies (rights), the production centre's
        # callbacks (issuance), operators reading the trail (audit) come through the ingress
        # controller; notify takes no calls; the console calls intake and rights.
        public = service in {"console", "intake", "rights", "issuance", "audit"}
        assert namespaces == ({"ingress-nginx", "monitoring"} if public else {"monitoring"})
        assert pods == ({"permits-console"} if service in {"intake", "rights"} else set())
        for rule in spec["egress"]:
            assert rule["ports"], "no rule opens every port"
        egress_ports = {port["port"] for rule in spec["egress"] for port in rule["ports"]}
        if service == "console":
            targets = {
                (
                    rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
                    port["port"],
                )
                for rule in spec["egress"]
                for port in rule["ports"]
            }
            assert targets == {("permits-intake", 8001), ("permits-rights", 8003)}
            continue
        assert {9093, 27017} <= egress_ports
        assert egress_ports <= {9092, 9093, 27017, 443, 587}


def test_stream_workers_never_outnumber_their_partitions(
    rendered: dict[str, list[Resource]],
) -> None:
    partitions = {spec.name: spec.partitions for spec in topics.TOPICS}
    for overlay in rendered.values():
        deployments = of_kind(overlay, "Deployment")
        for service in ("issuance", "notify", "audit"):
            replicas = deployments[f"permits-{service}"]["spec"]["replicas"]
            # Past the widest consumed topic's partition count a worker gets no partition.
            assert replicas <= max(partitions[name] for name in EXPECTED_READS[service])
