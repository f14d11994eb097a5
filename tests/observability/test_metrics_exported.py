"""Every metric the rules and the dashboard read is one the running service exports, with the
labels they match on and the latency bucket the SLO counts: `catalog serve` (two workers, as
multiprocess metrics run in pods) answers a few requests, then /metrics is compared with the
rendered PrometheusRule and dashboard. Renaming a metric, a label or a bucket fails here."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.monitoring import (
    EXTERNAL,
    GRAFANA_BUILTINS,
    dashboard,
    matchers,
    panel_queries,
    rule_groups,
    rules,
    selectors,
    substitute,
)
from tests.support.process_tier import create_product, migrated_sqlite_url, server_env, wait_until
from tests.support.server import ServerProcess
from tests.support.tokens import auth

pytestmark = pytest.mark.process

# Labels Prometheus attaches to every scraped series (ServiceMonitor target labels).
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "container"}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[str]]]:
    """sample name -> label name -> values seen, after every kind of request the metrics count:
    writes, reads, stock applied and refused, probes, and /readyz's 503 while draining."""
    directory: Path = tmp_path_factory.mktemp("serve")
    env = server_env(migrated_sqlite_url(directory), directory / "metrics", CATALOG_DRAIN_SECONDS="5")
    with ServerProcess(env, workers=2) as server:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            product = create_product(client, stock=1)
            stock = f"/v1/products/{product['id']}/stock"
            for expected in (201, 409):  # applied, then insufficient
                response = client.post(stock, json={"delta": -1, "reason": "order"}, headers=auth())
                assert response.status_code == expected, response.text
            for path in ("/livez", "/readyz", f"/v1/products/{product['id']}"):
                assert client.get(path, headers=auth()).status_code == 200
            # Draining after SIGTERM: /readyz answers 503 (what CatalogNotReady counts), still serving.
            server.terminate()
            wait_until(lambda: client.get("/readyz").status_code == 503, 4, "/readyz to answer 503 after SIGTERM")
            text = client.get("/metrics").text
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].setdefault("__present__", set())
            for label, value in sample.labels.items():
                found[sample.name][label].add(value)
    return found


def _references() -> list[tuple[str, str, dict[str, tuple[str, str]]]]:
    """(where, metric name, matchers) for every selector of the rendered rules and dashboard."""
    values = {**GRAFANA_BUILTINS, "namespace": "catalog-prod", "job": "catalog"}
    found = []
    for rule in rules(rule_groups("catalog-prod"), "record") + rules(rule_groups("catalog-prod"), "alert"):
        where = rule.get("record") or rule["alert"]
        found += [(where, s.name, matchers(s)) for s in selectors(rule["expr"])]
    for title, expr in panel_queries(dashboard()):
        found += [(f"panel {title!r}", s.name, matchers(s)) for s in selectors(substitute(expr, values))]
    return found


def test_every_metric_read_is_exported_with_its_labels(helm: None, exposition) -> None:
    references = [(w, n, m) for w, n, m in _references() if ":" not in n and n not in EXTERNAL]
    assert {name for _, name, _ in references} == {
        "catalog_db_errors_total",
        "catalog_http_request_duration_seconds_bucket",
        "catalog_http_request_duration_seconds_count",
        "catalog_http_requests_in_flight",
        "catalog_stock_adjustments_total",
    }
    for where, name, matched in references:
        assert name in exposition, f"{where}: the service exports no {name}"
        for label, (op, value) in matched.items():
            if label in TARGET_LABELS:
                continue
            assert label in exposition[name], f"{where}: {name} has no label {label!r}"
            if op == "=":
                assert value in exposition[name][label], f"{where}: {name}{{{label}={value!r}}} never appears"


def test_every_catalog_metric_is_on_the_dashboard(helm: None, exposition) -> None:
    """Each family the service exports has a panel (histograms through _count or _bucket)."""
    exported = {name.removesuffix(s) for name in exposition for s in ("_bucket", "_count", "_sum") if name.endswith(s)}
    exported |= {name for name in exposition if not name.endswith(("_bucket", "_count", "_sum", "_created"))}
    values = {**GRAFANA_BUILTINS, "namespace": "x", "job": "x"}
    shown = {s.name for _, e in panel_queries(dashboard()) for s in selectors(substitute(e, values))}
    shown_families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_total") for n in shown}
    missing = {n for n in exported if n.startswith("catalog_") and n.removesuffix("_total") not in shown_families}
    assert not missing, f"exported but on no panel: {missing}"
