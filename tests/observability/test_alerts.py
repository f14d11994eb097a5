"""`promtool test rules` on the rendered rules of catalog-prod: for each traffic pattern, which
alerts fire at which time and, just as much, which stay silent (every alert is checked at every
time). catalog-staging traffic is fed alongside where it matters: the prod rules must ignore it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.monitoring import rule_groups, rules, write_rule_file
from tests.observability.promtool_cases import JOB, POD, Phase, promtool_test_file

pytestmark = pytest.mark.static

NS = "catalog-prod"
OTHER = "catalog-staging"
FAST_A, SLOW_A = "CatalogAvailabilityBudgetFastBurn", "CatalogAvailabilityBudgetSlowBurn"
FAST_L, SLOW_L = "CatalogLatencyBudgetFastBurn", "CatalogLatencyBudgetSlowBurn"
# Labels each alert must carry beyond its rule's own: what its expression aggregates by.
OUTPUT_LABELS = {
    FAST_A: {"namespace": NS},
    SLOW_A: {"namespace": NS},
    FAST_L: {"namespace": NS},
    SLOW_L: {"namespace": NS},
    "CatalogTargetDown": {"namespace": NS, "job": JOB, "pod": POD, "instance": "10.0.0.7:8000"},
    "CatalogMetricsAbsent": {},
    "CatalogNotReady": {"namespace": NS, "pod": POD},
    "CatalogDatabaseUnavailable": {"namespace": NS},
    "CatalogStockInsufficientSurge": {"namespace": NS},
    "CatalogPodRestarting": {"namespace": NS, "pod": POD},
}
# Another environment on fire: 50 % errors, 50 % slow, database down, restarting.
BURNING = Phase(
    180,
    error_ratio=0.5,
    slow_ratio=0.5,
    probe_failing_rps=0.2,
    db_errors_rps=1,
    stock_insufficient_rps=1,
    restarts_per_minute=1,
)

CASES = [
    pytest.param(
        {NS: [Phase(180)], OTHER: [BURNING]}, {"10m": set(), "3h": set()}, id="healthy-prod-ignores-staging-on-fire"
    ),
    pytest.param(
        {NS: [Phase(60, error_ratio=0.02)]},
        {"2m": set(), "5m": {FAST_A}, "30m": {FAST_A, SLOW_A}},
        id="2pct-errors-20x-pages-after-for",
    ),
    pytest.param(
        {NS: [Phase(60, error_ratio=0.007)]},
        {"10m": {FAST_A}, "30m": {FAST_A, SLOW_A}},
        id="0.7pct-errors-7x-pages-on-6h-pair",
    ),
    pytest.param(
        {NS: [Phase(60, error_ratio=0.005)]}, {"10m": set(), "30m": {SLOW_A}}, id="0.5pct-errors-5x-tickets-only"
    ),
    pytest.param(
        {NS: [Phase(240, error_ratio=0.0008)]}, {"30m": set(), "4h": set()}, id="0.08pct-errors-within-budget-silent"
    ),
    pytest.param(
        {NS: [Phase(60, error_ratio=0.02), Phase(60)]},
        {"50m": {FAST_A, SLOW_A}, "95m": {SLOW_A}},
        id="burn-stops-page-resolves-ticket-stays",
    ),
    pytest.param(
        {NS: [Phase(30, rps=1, error_ratio=0.02, probe_rps=10)]},
        {"10m": {FAST_A}},
        id="probes-do-not-dilute-the-error-ratio",
    ),
    pytest.param(
        {NS: [Phase(60, slow_ratio=0.2)]},
        {"2m": set(), "10m": {FAST_L}, "30m": {FAST_L, SLOW_L}},
        id="20pct-slow-pages",
    ),
    pytest.param({NS: [Phase(60, slow_ratio=0.04)]}, {"10m": set(), "30m": {SLOW_L}}, id="4pct-slow-tickets-only"),
    pytest.param(
        {NS: [Phase(240, slow_ratio=0.005)]}, {"30m": set(), "4h": set()}, id="0.5pct-slow-within-budget-silent"
    ),
    pytest.param(
        {NS: [Phase(20, rps=0, up=0)]},
        {"4m": set(), "7m": {"CatalogTargetDown"}, "13m": {"CatalogTargetDown", "CatalogMetricsAbsent"}},
        id="target-down-then-absent",
    ),
    pytest.param(
        {NS: [Phase(20, rps=0, up=None)], OTHER: [Phase(20)]},
        {"9m": set(), "12m": {"CatalogMetricsAbsent"}},
        id="no-target-in-prod-while-staging-is-up",
    ),
    pytest.param(
        {NS: [Phase(20, probe_failing_rps=0.1)]}, {"4m": set(), "8m": {"CatalogNotReady"}}, id="readiness-failing"
    ),
    pytest.param(
        {NS: [Phase(2, probe_failing_rps=0.1, probe_rps=0), Phase(18, probe_rps=0.1)]},
        {"5m": set(), "10m": set(), "15m": set()},
        id="readiness-blip-while-draining-silent",
    ),
    pytest.param(
        {NS: [Phase(20, db_errors_rps=0.2)]}, {"4m": set(), "8m": {"CatalogDatabaseUnavailable"}}, id="database-down"
    ),
    pytest.param(
        {NS: [Phase(2, db_errors_rps=0.2), Phase(18)]},
        {"4m": set(), "6m": set(), "10m": set()},
        id="database-blip-silent",
    ),
    pytest.param(
        {NS: [Phase(40, stock_applied_rps=0.05, stock_insufficient_rps=0.2)]},
        {"14m": set(), "20m": {"CatalogStockInsufficientSurge"}},
        id="most-stock-adjustments-refused",
    ),
    pytest.param(
        {NS: [Phase(40, stock_insufficient_rps=0.03)]}, {"20m": set(), "35m": set()}, id="few-refusals-silent"
    ),
    pytest.param(
        {NS: [Phase(40, stock_applied_rps=0.5, stock_insufficient_rps=0.1)]},
        {"20m": set(), "35m": set()},
        id="some-refusals-silent",
    ),
    pytest.param(
        {NS: [Phase(30, restarts_per_minute=0.2)]}, {"5m": set(), "20m": {"CatalogPodRestarting"}}, id="crash-looping"
    ),
    pytest.param(
        {NS: [Phase(1, restarts_per_minute=1), Phase(29)]}, {"5m": set(), "25m": set()}, id="one-restart-silent"
    ),
]


@pytest.fixture(scope="module")
def prod_rules(
    helm: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], dict[str, dict[str, str]]]:
    """The rule file, every alert name, and the full label set each alert fires with. promtool
    compares annotations exactly, so this file has none; test_alert_annotations_render has them."""
    groups = rule_groups(NS)
    alerts = rules(groups, "alert")
    assert {rule["alert"] for rule in alerts} == set(OUTPUT_LABELS), "an alert without a promtool case, or a stale one"
    labels = {rule["alert"]: {**OUTPUT_LABELS[rule["alert"]], **rule["labels"]} for rule in alerts}
    for rule in alerts:
        del rule["annotations"]
    path = write_rule_file(groups, tmp_path_factory.mktemp("rules") / "rules.yaml")
    return path, sorted(labels), labels


def _promtool_test(promtool: str, directory: Path, test: dict) -> None:
    path = directory / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", path.name], cwd=directory, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("traffic", "expected"), CASES)
def test_alerts_fire_exactly_when_expected(promtool, prod_rules, tmp_path, traffic, expected) -> None:
    rule_file, names, labels = prod_rules
    test = promtool_test_file(str(rule_file), traffic, expected, names, labels)

    _promtool_test(promtool, tmp_path, test)


def test_recorded_ratios_are_this_namespaces_only(promtool, prod_rules, tmp_path) -> None:
    """With staging burning beside it, prod's rules record prod's ratios (0 % errors, not absent
    before the first 5xx; 30 % slow) and the objectives, and nothing for staging."""
    rule_file, names, labels = prod_rules
    phases = {NS: [Phase(60, slow_ratio=0.3)], OTHER: [BURNING]}
    # In thousandths, rounded: promtool compares floats exactly.
    promql = [
        {
            "expr": f"round(1000 * {name})",
            "eval_time": "40m",
            "exp_samples": [{"labels": f'{{namespace="{NS}"{extra}}}', "value": value} for extra, value in samples],
        }
        for name, samples in (
            ("namespace:catalog_availability_errors:ratio_rate5m", [("", 0)]),
            ("namespace:catalog_availability_errors:ratio_rate30m", [("", 0)]),
            ("namespace:catalog_latency_errors:ratio_rate5m", [("", 300)]),
            ("namespace:catalog_latency_errors:ratio_rate1h", [("", 300)]),
            ("namespace:catalog_latency_errors:ratio_rate30d", [("", 300)]),
            ("namespace:catalog_slo_objective:ratio", [(', slo="availability"', 999), (', slo="latency"', 990)]),
        )
    ]
    test = promtool_test_file(str(rule_file), phases, {"40m": {FAST_L, SLOW_L}}, names, labels, promql)

    _promtool_test(promtool, tmp_path, test)


def test_alert_annotations_render(promtool, helm, tmp_path) -> None:
    """Prometheus' own templates ($value, $labels) pass through Helm and render at alert time."""
    rule_file = write_rule_file(rule_groups(NS), tmp_path / "rules.yaml")
    phases = {NS: [Phase(30, error_ratio=0.02)]}
    test = promtool_test_file(str(rule_file), phases, {}, [], {})
    test["tests"][0]["alert_rule_test"] = [
        {
            "eval_time": "10m",
            "alertname": FAST_A,
            "exp_alerts": [
                {
                    "exp_labels": {"namespace": NS, "severity": "critical", "slo": "availability"},
                    "exp_annotations": {
                        "summary": "Catalog is spending its availability error budget too fast.",
                        "description": "2% of requests in catalog-prod are answered with a 5xx (objective 99.9 %). "
                        "This pages at 14.4x the budget rate over 1h and 5m or at 6x the budget rate over 6h and 30m.",
                        "runbook_url": "docs/runbooks/catalog.md#catalogavailabilitybudgetfastburn",
                    },
                }
            ],
        }
    ]

    _promtool_test(promtool, tmp_path, test)
