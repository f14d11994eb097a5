"""The monitoring objects are opt-in: off by default, each rendered alone when enabled, with the
labels and annotations from values, and they agree with the objects the chart names (the Service
Prometheus scrapes as the rules' `job`, the container kube-state-metrics and cAdvisor report)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.observability.monitoring import (
    MONITORING_ON,
    dashboard_config_map,
    matchers,
    panel_queries,
    rules,
    selectors,
    substitute,
)
from tests.support.render import Rendered, render

pytestmark = pytest.mark.static


def _rule(docs: Rendered) -> dict | None:
    found = docs.of_kind("PrometheusRule")
    return found[0] if found else None


@pytest.mark.parametrize(
    ("monitoring", "rule", "board"),
    [
        pytest.param(None, False, False, id="defaults"),
        pytest.param({"prometheusRule": {"enabled": True}}, True, False, id="rules-only"),
        pytest.param({"dashboard": {"enabled": True}}, False, True, id="dashboard-only"),
        pytest.param(MONITORING_ON["monitoring"], True, True, id="all"),
    ],
)
def test_objects_render_only_when_enabled(helm: None, monitoring: dict | None, rule: bool, board: bool) -> None:
    docs = render(values={"monitoring": monitoring} if monitoring else None, namespace="catalog-dev")

    assert (_rule(docs) is not None) is rule
    assert (dashboard_config_map(docs) is not None) is board


def test_objects_carry_the_labels_from_values(helm: None) -> None:
    values = {
        "monitoring": {
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "dashboard": {
                "enabled": True,
                "labels": {"grafana_dashboard": "catalog"},
                "annotations": {"grafana_folder": "Catalog"},
            },
        }
    }
    docs = render(values=values, namespace="catalog-staging")
    rule, config_map = _rule(docs), dashboard_config_map(docs)
    assert rule is not None
    assert config_map is not None

    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "catalog"
    assert rule["metadata"]["namespace"] == "catalog-staging"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "catalog"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Catalog"}
    assert config_map["metadata"]["namespace"] == "catalog-staging"


def test_default_dashboard_label_is_the_grafana_sidecars(helm: None) -> None:
    config_map = dashboard_config_map(
        render(values={"monitoring": {"dashboard": {"enabled": True}}}, namespace="catalog-dev")
    )

    assert config_map is not None
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_rules_and_dashboard_name_what_the_chart_deploys(helm: None) -> None:
    """`job` in the rules is the Service the ServiceMonitor selects (the operator names the job
    after it unless jobLabel is set); `container` is the Deployment's server container."""
    docs = render(values=MONITORING_ON, namespace="catalog-prod")
    service_monitor = docs.one("ServiceMonitor")
    service = docs.one("Service")
    deployment = docs.one("Deployment")
    rule = _rule(docs)
    config_map = dashboard_config_map(docs)
    assert rule is not None
    assert config_map is not None
    assert "jobLabel" not in service_monitor["spec"]
    selected = service_monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    containers = {c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    assert {e["port"] for e in service_monitor["spec"]["endpoints"]} <= ports

    found = {"job": set(), "container": set()}
    exprs = [r["expr"] for r in rules(rule["spec"]["groups"], "alert")]
    exprs += [
        substitute(e, {"namespace": "x", "job": "x", "__rate_interval": "1m"})
        for _, e in panel_queries(json.loads(config_map["data"]["catalog-overview.json"]))
    ]
    for expr in exprs:
        for selector in selectors(expr):
            for label in found:
                if label in matchers(selector) and matchers(selector)[label][1] not in {"x", "kube-state-metrics"}:
                    found[label].add(matchers(selector)[label][1])
    assert found["job"] == {service["metadata"]["name"]}
    assert found["container"]
    assert found["container"] <= containers


@pytest.mark.parametrize("namespace", ["catalog-dev", "catalog-prod"])
def test_objects_are_valid_for_the_api_server(kubeconform: list[str], namespace: str) -> None:
    """The PrometheusRule against the installed CRD's schema, the ConfigMap against the core one."""
    docs = render(values=MONITORING_ON, namespace=namespace)
    objects = [_rule(docs), dashboard_config_map(docs)]
    manifest = "---\n".join(yaml.safe_dump(doc) for doc in objects if doc is not None)

    result = subprocess.run([*kubeconform, "-"], input=manifest, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 2" in result.stdout + result.stderr
