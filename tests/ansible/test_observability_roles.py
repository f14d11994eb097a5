"""What the monitoring, tracing and logging roles leave on the converged platform, read back from
the API server and matched against the catalog as it really is (its chart rendered per
environment, its log formatter run)."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import urlsplit

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider

from catalog.observability.logging import JsonFormatter, request_id_var
from tests.support import render
from tools.cluster.toolbox import REPO_ROOT

pytestmark = pytest.mark.cluster

ENVIRONMENTS = [folder.name for folder in render.generated_directories(render.argocd_object("ApplicationSet"))]
HIDDEN_CONTROL_PLANE = re.compile(r"etcd|scheduler|controller-manager|kube-proxy", re.IGNORECASE)
LOGGING_DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "logging" / "defaults" / "main.yml").read_text())


def _namespace_labels(converged, name: str) -> dict[str, str]:
    return converged.get_json("namespace", name)["metadata"]["labels"]


@pytest.fixture
def prometheus(converged) -> dict:
    found = converged.get_json("prometheuses", "-n", "monitoring")["items"]
    assert len(found) == 1, [p["metadata"]["name"] for p in found]
    return found[0]


@pytest.fixture(scope="module")
def environments() -> dict[str, tuple[str, render.Rendered]]:
    """Environment -> (its namespace, the chart rendered as its ArgoCD Application says)."""
    return {
        name: (app["spec"]["destination"]["namespace"], render.render_application(app))
        for name, app in render.applications().items()
    }


@pytest.mark.parametrize(
    ("kind", "selector", "namespace_selector"),
    [
        pytest.param("ServiceMonitor", "serviceMonitorSelector", "serviceMonitorNamespaceSelector", id="monitor"),
        pytest.param("PrometheusRule", "ruleSelector", "ruleNamespaceSelector", id="rule"),
    ],
)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_prometheus_selects_the_catalog_object_of_each_environment(
    converged, prometheus, environments, environment, kind, selector, namespace_selector
):
    namespace, rendered = environments[environment]
    labels = rendered.one(kind)["metadata"]["labels"]
    spec = prometheus["spec"]

    assert render.label_selector_matches(spec[selector], labels), (spec[selector], labels)
    assert render.label_selector_matches(spec[namespace_selector], _namespace_labels(converged, namespace))


@pytest.mark.parametrize(
    ("namespace", "labels"),
    [
        pytest.param("catalog-dev", {"app.kubernetes.io/name": "catalog"}, id="without-release-label"),
        pytest.param("argocd", {"release": "kube-prometheus-stack"}, id="namespace-not-watched"),
    ],
)
def test_prometheus_ignores_objects_outside_its_selectors(converged, prometheus, namespace, labels):
    spec = prometheus["spec"]
    selected = render.label_selector_matches(spec["serviceMonitorSelector"], labels) and (
        render.label_selector_matches(spec["serviceMonitorNamespaceSelector"], _namespace_labels(converged, namespace))
    )

    assert not selected


def test_grafana_sidecar_loads_the_catalog_dashboard_from_any_namespace(converged, environments):
    dashboards = [r.one("ConfigMap", n) for _, r in environments.values() for n in _dashboard_names(r)]
    assert dashboards, "no environment renders the dashboard ConfigMap"
    deployment = converged.get_json("deployment", "-n", "monitoring", "kube-prometheus-stack-grafana")
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    env = {e["name"]: e.get("value") for e in containers["grafana-sc-dashboard"]["env"]}

    assert env["NAMESPACE"] == "ALL"
    for dashboard in dashboards:
        assert dashboard["metadata"]["labels"].get(env["LABEL"]) == env["LABEL_VALUE"]


def _dashboard_names(rendered: render.Rendered) -> list[str]:
    return [c["metadata"]["name"] for c in rendered.of_kind("ConfigMap") if "dashboard" in c["metadata"]["name"]]


@pytest.mark.parametrize(("datasource", "kind"), [("Loki", "loki"), ("Jaeger", "jaeger")])
def test_grafana_datasource_points_at_a_service_port_that_exists(converged, datasource, kind):
    config_map = converged.get_json("configmap", "-n", "monitoring", "kube-prometheus-stack-grafana-datasource")
    provisioned = yaml.safe_load(next(iter(config_map["data"].values())))["datasources"]
    found = next(d for d in provisioned if d["name"] == datasource)
    url = urlsplit(found["url"])
    service, namespace = url.hostname.split(".")[:2]

    ports = [p["port"] for p in converged.get_json("service", "-n", namespace, service)["spec"]["ports"]]
    assert found["type"] == kind
    assert url.port in ports


def test_grafana_admin_password_comes_from_the_generated_secret(converged):
    secret = converged.get_json("secret", "-n", "monitoring", "grafana-admin")
    deployment = converged.get_json("deployment", "-n", "monitoring", "kube-prometheus-stack-grafana")
    grafana = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana")
    password = next(e for e in grafana["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD")

    assert password["valueFrom"]["secretKeyRef"] == {"name": "grafana-admin", "key": "admin-password"}
    # The role generates 32 letters and digits (Secret data is base64).
    assert re.fullmatch(r"[A-Za-z0-9]{32}", base64.b64decode(secret["data"]["admin-password"]).decode())


def test_operator_bounds_the_config_reloader_it_injects(converged):
    deployment = converged.get_json("deployment", "-n", "monitoring", "kube-prometheus-stack-operator")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = {a.split("=")[0] for a in args if a.startswith("--config-reloader-")}

    assert flags >= {f"--config-reloader-{r}-{p}" for r in ("cpu", "memory") for p in ("request", "limit")}


def test_no_hidden_control_plane_part_is_scraped_or_alerted_on(converged):
    monitors = converged.get_json("servicemonitors", "--all-namespaces")["items"]
    services = converged.get_json("services", "-n", "kube-system")["items"]
    rules = converged.get_json("prometheusrules", "-n", "monitoring")["items"]
    rule_groups = [g["name"] for r in rules for g in r["spec"]["groups"]]

    assert monitors, "no ServiceMonitor at all: the check below would prove nothing"
    assert [m["metadata"]["name"] for m in monitors if HIDDEN_CONTROL_PLANE.search(m["metadata"]["name"])] == []
    assert [s["metadata"]["name"] for s in services if HIDDEN_CONTROL_PLANE.search(s["metadata"]["name"])] == []
    assert [g for g in rule_groups if HIDDEN_CONTROL_PLANE.search(g)] == []


def test_node_exporter_does_not_mount_the_host_root(converged):
    daemonset = converged.get_json("daemonset", "-n", "monitoring", "kube-prometheus-stack-prometheus-node-exporter")
    host_paths = [v["hostPath"]["path"] for v in daemonset["spec"]["template"]["spec"]["volumes"] if "hostPath" in v]

    assert host_paths, "node-exporter mounts nothing from the host: the check below would prove nothing"
    assert "/" not in host_paths


@pytest.mark.parametrize(
    ("service", "ports"),
    [
        pytest.param("jaeger-collector", {"otlp-grpc": 4317, "otlp-http": 4318}, id="collector"),
        pytest.param("jaeger-query", {"query": 16686}, id="query"),
    ],
)
def test_jaeger_service_reaches_the_container_port_of_a_ready_pod(converged, service, ports):
    found = converged.get_json("service", "-n", "tracing", service)["spec"]
    selector = ",".join(f"{k}={v}" for k, v in found["selector"].items())
    (pod,) = converged.get_json("pods", "-n", "tracing", "-l", selector)["items"]
    container_ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"]}

    assert {p["name"]: p["port"] for p in found["ports"]} == ports
    assert {p["targetPort"]: container_ports[p["targetPort"]] for p in found["ports"]} == ports
    assert all(c["status"] == "True" for c in pod["status"]["conditions"] if c["type"] == "Ready")


@pytest.mark.parametrize(
    ("namespace", "port", "allowed"),
    [
        *[pytest.param(f"catalog-{e}", 4318, True, id=f"catalog-{e}-otlp-http") for e in ENVIRONMENTS],
        pytest.param("catalog-prod", 4317, True, id="catalog-prod-otlp-grpc"),
        pytest.param("monitoring", 16686, True, id="grafana-query"),
        pytest.param("catalog-dev", 16686, False, id="catalog-cannot-query"),
        pytest.param("monitoring", 4318, False, id="monitoring-cannot-send"),
        pytest.param("argocd", 4318, False, id="other-namespace-cannot-send"),
    ],
)
def test_jaeger_network_policy_admits_only_the_flows_it_needs(converged, namespace, port, allowed):
    policy = converged.get_json("networkpolicy", "-n", "tracing", "jaeger")["spec"]
    labels = _namespace_labels(converged, namespace)
    admitted = any(
        any(render.label_selector_matches(peer["namespaceSelector"], labels) for peer in rule["from"])
        and port in [p["port"] for p in rule["ports"]]
        for rule in policy["ingress"]
    )

    assert admitted is allowed


@pytest.fixture(scope="module")
def catalog_log_line() -> dict:
    """A request line exactly as the catalog writes it: its formatter, a real span, a request id
    and the access log's extra fields (observability/requests.py)."""
    tracer = TracerProvider().get_tracer("test")
    token = request_id_var.set("req-123")
    try:
        with tracer.start_as_current_span("GET /v1/products/<product_id>"):
            record = logging.makeLogRecord(
                {"name": "catalog.access", "levelname": "INFO", "levelno": logging.INFO, "msg": "request"}
            )
            record.__dict__.update(method="GET", route="/v1/products/<product_id>", status=200)
            return json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)


@pytest.fixture
def agent_config(converged) -> str:
    return converged.get_json("configmap", "-n", "monitoring", "alloy")["data"]["config.alloy"]


def _block(config: str, stage: str) -> str:
    match = re.search(rf"{re.escape(stage)} \{{(.*?)\n    \}}", config, re.DOTALL)
    assert match, f"{stage} is missing from the agent's config"
    return match.group(1)


@pytest.mark.parametrize(
    ("stage", "fields"),
    [
        pytest.param("stage.json", ["level", "request_id", "trace_id", "route"], id="parsed"),
        pytest.param("stage.labels", ["level"], id="labels"),
        pytest.param("stage.structured_metadata", ["request_id", "trace_id", "route"], id="metadata"),
    ],
)
def test_agent_extracts_fields_the_catalog_really_writes(agent_config, catalog_log_line, stage, fields):
    named = re.findall(r'^\s*(\w+)\s*=\s*""', _block(agent_config, stage), re.MULTILINE)

    assert sorted(named) == sorted(fields)
    assert all(catalog_log_line.get(field) for field in named), (named, catalog_log_line)


def test_agent_parses_the_pods_the_catalog_chart_labels(agent_config, environments):
    selector = re.search(r'selector = "\{app=\\"([^"\\]+)\\"\}"', agent_config)
    assert selector, "the JSON stage is not scoped to the catalog's pods"
    for _, rendered in environments.values():
        deployment = rendered.one("Deployment")
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == selector.group(1)
    assert selector.group(1) == LOGGING_DEFAULTS["logging_json_app"]
