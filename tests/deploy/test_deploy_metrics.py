"""Every metric the alerts and the dashboard use is one the services define, with those labels.

The live check against the `/metrics` of running services belongs to the end-to-end suite; it
uses the same helpers (tests/deploy/metric_names.py).
"""

from __future__ import annotations

from tests.deploy.metric_names import (
    base_metric,
    declared_labels,
    declared_metrics,
    exported_series,
    is_external,
    monitoring_queries,
    names_in_exposition,
    promql_label_uses,
    promql_metric_names,
    used_metric_names,
)

# Labels Prometheus adds to every scraped series (target labels), plus the histogram bucket.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "le"}
# Named by the issue: the dashboard and the alerts must show these.
REQUIRED = {
    "permits_applications_total",
    "permits_sla_open",
    "permits_sla_breaches_total",
    "permits_issue_working_days_bucket",
    "permits_rights_delivery_lag_seconds_bucket",
    "permits_verify_requests_total",
    "permits_http_request_seconds_bucket",
    "permits_notifications_total",
    "permits_events_consumed_total",
    "permits_rights_deliveries_total",
}


def test_promql_names_are_found_without_functions_labels_or_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, agency) (rate(permits_x_bucket{service="rights",'
        ' route=~"/api/v1/.*"}[5m]))) > 1e3 and on (agency) up{job="a"} offset 5m'
    )
    assert promql_metric_names(expr) == {"permits_x_bucket", "up"}
    assert promql_metric_names("sum(permits_sla_open{state='at_risk'}) > 25") == {
        "permits_sla_open"
    }
    assert promql_label_uses('sum by (point) (permits_sla_open{state="at_risk"})') == {
        "permits_sla_open": {"point", "state"}
    }


def test_exposition_names_are_read_from_a_scrape() -> None:
    scrape = (
        "# HELP permits_sla_open Open deadlines\n# TYPE permits_sla_open gauge\n"
        'permits_sla_open{state="on_track"} 3.0\npermits_x_total 1.0\n'
    )
    assert names_in_exposition(scrape) == {"permits_sla_open", "permits_x_total"}


def test_dashboard_and_alerts_show_what_operators_need() -> None:
    assert set(used_metric_names()) >= REQUIRED
    external = {name for name in used_metric_names(include_external=True) if is_external(name)}
    assert external == {"up", "kafka_consumergroup_lag", "kube_pod_status_ready"}


def test_every_used_metric_is_defined_in_the_services() -> None:
    declared = declared_metrics()
    assert "permits_http_request_seconds" in declared, "the scan found the shared metrics"
    missing = {
        name: sorted(sources)
        for name, sources in used_metric_names().items()
        if name not in exported_series(declared)
    }
    assert not missing, f"used in monitoring but exported by no service: {missing}"


def test_every_label_used_is_one_the_metric_has() -> None:
    declared = declared_metrics()
    labels = declared_labels()
    wrong = []
    for source, exprs in monitoring_queries().items():
        for expr in exprs:
            for series, used in promql_label_uses(expr).items():
                if is_external(series):
                    continue
                metric = base_metric(series, declared)
                assert metric is not None, series
                unknown = used - labels[metric] - TARGET_LABELS
                if unknown:
                    wrong.append(f"{source}: {series} has no label {sorted(unknown)}")
    assert not wrong, "\n".join(wrong)
