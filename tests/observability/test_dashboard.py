"""The Grafana dashboard as the chart renders it: its identity and variables, every query
parses as PromQL (promtool checks them as recording rules), every variable a query uses is
defined, and it reads the series the rules record."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.observability.monitoring import (
    GRAFANA_BUILTINS,
    PANELS,
    dashboard,
    matchers,
    panel_queries,
    rule_groups,
    rules,
    selectors,
    substitute,
    variable_queries,
    variables_used,
    write_rule_file,
)

pytestmark = pytest.mark.static


@pytest.fixture(scope="module")
def board(helm: None) -> dict:
    return dashboard()


def _defined(board: dict) -> set[str]:
    return {variable["name"] for variable in board["templating"]["list"]}


def test_dashboard_identity_and_variables(board: dict) -> None:
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}

    assert board["uid"] == "catalog-overview"
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["type"] == "query"
    # Every panel and query variable reads from the chosen data source.
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            if inner["type"] != "row":
                assert inner["datasource"]["uid"] == "${datasource}", inner["title"]
                assert all(t["datasource"]["uid"] == "${datasource}" for t in inner["targets"]), inner["title"]
    assert all(v["datasource"]["uid"] == "${datasource}" for v in variables.values() if v["type"] == "query")


def test_every_query_parses_as_promql(promtool: str, board: dict, tmp_path: Path) -> None:
    values = {**GRAFANA_BUILTINS, **{name: "x" for name in _defined(board)}}
    queries = panel_queries(board) + variable_queries(board)
    assert {source for source, _ in queries} == PANELS | {"namespace", "job"}
    group = {
        "name": "dashboard-queries",
        "rules": [
            {"record": f"dashboard:query_{i}", "expr": substitute(expr, values)} for i, (_, expr) in enumerate(queries)
        ],
    }
    path = write_rule_file([group], tmp_path / "dashboard.yaml")

    result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_variable_used_is_defined(board: dict) -> None:
    defined = _defined(board) | set(GRAFANA_BUILTINS)
    used = set()
    for title, expr in panel_queries(board) + variable_queries(board):
        missing = variables_used(expr) - defined
        assert not missing, f"{title}: undefined {missing}"
        used |= variables_used(expr)
    assert {"namespace", "job", "__rate_interval"} <= used


def test_every_catalog_query_is_scoped_to_the_chosen_namespace(board: dict) -> None:
    for title, expr in panel_queries(board):
        for selector in selectors(substitute(expr, {**GRAFANA_BUILTINS, "namespace": "NS", "job": "JOB"})):
            assert matchers(selector).get("namespace") == ("=", "NS"), f"{title}: {selector}"


def test_dashboard_reads_only_series_the_rules_record(board: dict) -> None:
    """A recorded name (level:metric:operations) in a panel must be one the PrometheusRule records."""
    recorded = {rule["record"] for rule in rules(rule_groups("catalog-prod"), "record")}
    used = {
        selector.name
        for _, expr in panel_queries(board)
        for selector in selectors(substitute(expr, {**GRAFANA_BUILTINS, "namespace": "x", "job": "x"}))
        if ":" in selector.name
    }
    assert used, "no SLO panel reads the recording rules"
    assert used <= recorded, f"not recorded by the rules: {used - recorded}"
    for name in ("ratio_rate30d", "ratio_rate1h", "slo_objective"):
        assert any(name in u for u in used), f"no panel uses {name}"
