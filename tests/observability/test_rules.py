"""The rendered PrometheusRule: promtool accepts it for every environment, every selector is
scoped to the release's namespace, the SLO values reach the expressions, and every alert
carries a severity, a summary, a description and a runbook section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.observability.monitoring import (
    NAMESPACES,
    RUNBOOK,
    matchers,
    render_error,
    rule_groups,
    rules,
    selectors,
    write_rule_file,
)
from tests.support.render import applications, environments, render_application

pytestmark = pytest.mark.static

SEVERITIES = {"critical", "warning", "info"}


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_rules_pass_promtool_check(promtool: str, tmp_path: Path, namespace: str) -> None:
    path = write_rule_file(rule_groups(namespace), tmp_path / "rules.yaml")

    result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_rules_select_only_their_own_namespace(helm: None, namespace: str) -> None:
    """Three releases in one Prometheus: every selector names this namespace, and every recorded
    series keeps the namespace label, so no release records or alerts on another's series."""
    groups = rule_groups(namespace)
    for rule in rules(groups, "record") + rules(groups, "alert"):
        name = rule.get("record") or rule["alert"]
        found = selectors(rule["expr"])
        if not found:  # vector(constant): the rule's own labels name the namespace
            assert rule["labels"]["namespace"] == namespace, name
        for selector in found:
            assert matchers(selector).get("namespace") == ("=", namespace), f"{name}: {selector} is not scoped"
        if "record" in rule:
            assert rule["record"].startswith("namespace:"), f"{name}: level is not namespace"
            assert "sum by (namespace)" in rule["expr"] or rule.get("labels", {}).get("namespace") == namespace


def test_burn_rate_pairs_follow_the_workbook(helm: None) -> None:
    """Fast burn pages at 14.4x (1h and 5m) or 6x (6h and 30m); slow burn tickets at 3x (1d and 2h)
    or 1x (3d and 6h), for both SLOs, against each SLO's own budget."""
    alerts = {rule["alert"]: rule for rule in rules(rule_groups("catalog-prod"), "alert")}
    expected = {
        "FastBurn": ("critical", {("1h", "14.4"), ("5m", "14.4"), ("6h", "6"), ("30m", "6")}),
        "SlowBurn": ("warning", {("1d", "3"), ("2h", "3"), ("3d", "1"), ("6h", "1")}),
    }
    for slo, budget in (("Availability", "(1 - 99.9 / 100)"), ("Latency", "(1 - 99 / 100)")):
        for speed, (severity, pairs) in expected.items():
            rule = alerts[f"Catalog{slo}Budget{speed}"]
            found = set(re.findall(rf"ratio_rate(\w+)\{{[^}}]*\}} > \(([\d.]+) \* {re.escape(budget)}\)", rule["expr"]))
            assert found == pairs, f"Catalog{slo}Budget{speed}: {found}"
            assert rule["labels"]["severity"] == severity


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        pytest.param(
            {"availabilityPercent": 99.5, "latencyThresholdSeconds": 0.5, "latencyPercent": 95},
            {"availability": "(1 - 99.5 / 100)", "latency": "(1 - 95 / 100)", "le": "0.5"},
            id="custom",
        ),
        pytest.param(
            {"availabilityPercent": 99.9, "latencyThresholdSeconds": 1, "latencyPercent": 99.0},
            {"availability": "(1 - 99.9 / 100)", "latency": "(1 - 99 / 100)", "le": "1.0"},
            id="whole-second-threshold-matches-the-exposed-le",
        ),
    ],
)
def test_slo_values_reach_the_rules(helm: None, slo: dict, expected: dict) -> None:
    groups = rule_groups("catalog-staging", slo)
    alerts = {rule["alert"]: rule["expr"] for rule in rules(groups, "alert")}
    recorded = {
        rule["record"] + rule.get("labels", {}).get("slo", ""): rule["expr"] for rule in rules(groups, "record")
    }

    assert expected["availability"] in alerts["CatalogAvailabilityBudgetFastBurn"]
    assert expected["latency"] in alerts["CatalogLatencyBudgetFastBurn"]
    assert (
        recorded["namespace:catalog_slo_objective:ratioavailability"] == f"vector({slo['availabilityPercent']} / 100)"
    )
    les = {
        matchers(s)["le"][1]
        for rule in rules(groups, "record")
        for s in selectors(rule["expr"])
        if s.name.endswith("_bucket")
    }
    assert les == {expected["le"]}


@pytest.mark.parametrize("threshold", [0.3, 0.2, 10])
def test_latency_threshold_must_be_a_bucket_bound(helm: None, threshold: float) -> None:
    values = {
        "monitoring": {
            "prometheusRule": {"enabled": True},
            "slo": {"availabilityPercent": 99.9, "latencyThresholdSeconds": threshold, "latencyPercent": 99},
        }
    }
    error = render_error("catalog-dev", values)

    assert "monitoring.slo.latencyThresholdSeconds" in error
    assert "0.25" in error  # names the bounds to choose from


def test_every_alert_is_labelled_annotated_and_has_a_runbook_section(helm: None) -> None:
    anchors = {_anchor(line) for line in RUNBOOK.read_text().splitlines() if line.startswith("#")}
    alerts = rules(rule_groups("catalog-prod"), "alert")
    assert {rule["alert"] for rule in alerts} == {
        "CatalogAvailabilityBudgetFastBurn",
        "CatalogAvailabilityBudgetSlowBurn",
        "CatalogDatabaseUnavailable",
        "CatalogLatencyBudgetFastBurn",
        "CatalogLatencyBudgetSlowBurn",
        "CatalogMetricsAbsent",
        "CatalogNotReady",
        "CatalogPodRestarting",
        "CatalogStockInsufficientSurge",
        "CatalogTargetDown",
    }
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"Catalog[A-Z][A-Za-z]+", name)
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/runbooks/catalog.md", name
        assert anchor == name.lower(), name
        assert anchor in anchors, f"{name}: no section #{anchor} in {RUNBOOK.name}"


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rules, enough for ours)."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")


@pytest.mark.parametrize("environment", environments())
def test_each_environment_as_argocd_renders_it_passes_promtool(promtool: str, tmp_path: Path, environment: str) -> None:
    """environments/<env> through the ApplicationSet: the rules load in kube-prometheus-stack (its
    release label), select only the Application's namespace, and promtool accepts them."""
    application = applications()[environment]
    namespace = application["spec"]["destination"]["namespace"]
    rule = render_application(application).one("PrometheusRule")
    groups = rule["spec"]["groups"]
    path = write_rule_file(groups, tmp_path / "rules.yaml")

    result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert namespace == f"catalog-{environment}"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    scoped = {matchers(s).get("namespace") for r in rules(groups, "alert") for s in selectors(r["expr"])}
    assert scoped == {("=", namespace)}
