"""The catalog chart rendered by the pinned helm, and what the observability tests read from it:
the PrometheusRule's groups, the dashboard, and the metric selectors inside their PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.support.render import Rendered, environments, render
from tools.cluster.toolbox import REPO_ROOT

RUNBOOK = REPO_ROOT / "docs" / "runbooks" / "catalog.md"
NAMESPACES = tuple(f"catalog-{environment}" for environment in environments())
# Every monitoring object on; each test overrides what it is about.
MONITORING_ON = {
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    }
}
# Read by rules or panels but exported by something else in the cluster.
EXTERNAL = {
    "up": "Prometheus, per scrape target",
    "container_cpu_usage_seconds_total": "cAdvisor (kubelet)",
    "container_memory_working_set_bytes": "cAdvisor (kubelet)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}
# The dashboard's panels that run queries, by title.
PANELS = {
    "Availability, 30 days", "Availability error budget left", "Fast enough, 30 days", "Latency error budget left",
    "Burn rate", "Requests by route and status", "Error ratio (5xx)", "Latency p50 / p95 / p99",
    "p95 latency by route", "In-flight requests by pod", "Scrape targets up", "Database unavailable (503) by pod",
    "Stock adjustments by outcome", "CPU by pod", "Memory (working set) by pod", "Container restarts (1h)",
}  # fmt: skip
# What Grafana puts in place of its built-in variables before a query reaches Prometheus.
GRAFANA_BUILTINS = {"__rate_interval": "2m", "__interval": "30s", "__range": "6h"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def render_error(namespace: str, values: dict[str, Any]) -> str:
    """helm's error output for values that must be refused (fails if helm renders them)."""
    result = render(values=values, namespace=namespace, check=False)
    assert not isinstance(result, Rendered), f"helm rendered values it should refuse: {values}"
    return result.stderr


def rule_groups(namespace: str, slo: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    values = json.loads(json.dumps(MONITORING_ON))
    if slo:
        values["monitoring"]["slo"] = slo
    return render(values=values, namespace=namespace).one("PrometheusRule")["spec"]["groups"]


def write_rule_file(groups: list[dict[str, Any]], path: Path) -> Path:
    """The groups as a Prometheus rule file, as the operator hands them to Prometheus."""
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def rules(groups: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Every rule with `key` ("alert" or "record")."""
    return [rule for group in groups for rule in group["rules"] if key in rule]


def dashboard(namespace: str = "catalog-prod") -> dict[str, Any]:
    config_map = dashboard_config_map(render(values=MONITORING_ON, namespace=namespace))
    assert config_map is not None, "the dashboard ConfigMap did not render"
    return json.loads(config_map["data"]["catalog-overview.json"])


def dashboard_config_map(docs: Rendered) -> dict[str, Any] | None:
    found = [doc for doc in docs.of_kind("ConfigMap") if "catalog-overview.json" in doc.get("data", {})]
    assert len(found) <= 1, "more than one dashboard ConfigMap"
    return found[0] if found else None


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, rows included."""
    found = []
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [(inner["title"], target["expr"]) for target in inner.get("targets", [])]
    return found


def variable_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, the selector inside its label_values(selector, label) query)."""
    found = []
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
            assert match, f"variable {variable['name']}: not a label_values(selector, label) query"
            found.append((variable["name"], match.group(1)))
    return found


def variables_used(expr: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(expr)}


def substitute(expr: str, values: dict[str, str]) -> str:
    """The query as Grafana sends it: $var and ${var} replaced."""
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector of a PromQL expression (those inside range selectors included)."""
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(expr),
        lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return found


def matchers(selector: promql_parser.VectorSelector) -> dict[str, tuple[str, str]]:
    """label -> (operator, value); the operator as PromQL writes it."""
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
    return {m.name: (ops[str(m.op).rsplit(".", 1)[-1]], m.value) for m in selector.matchers.matchers}
