"""End to end with a real Prometheus: it scrapes a running `catalog serve` (two workers) under a
short bounded load on loopback, evaluates the chart's rendered rules, and every recording rule
and every dashboard query over the service's own metrics returns data."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.observability.monitoring import (
    EXTERNAL,
    GRAFANA_BUILTINS,
    PANELS,
    dashboard,
    panel_queries,
    rule_groups,
    rules,
    selectors,
    substitute,
    write_rule_file,
)
from tests.observability.prometheus import Prometheus
from tests.support.process_tier import create_product, migrated_sqlite_url, server_env
from tests.support.server import ServerProcess
from tests.support.tokens import auth

pytestmark = pytest.mark.e2e

NS = "catalog-prod"
LOAD_SECONDS = 8.0
DATA_TIMEOUT_SECONDS = 30.0
# Only the scrape-target metric of EXTERNAL exists here: no kubelet, no kube-state-metrics.
ABSENT_HERE = set(EXTERNAL) - {"up"}


def _load(client: httpx.Client, product_id: str, seconds: float) -> int:
    """Reads, writes, stock applied and refused, a 404 and probes, for `seconds`; returns the count."""
    deadline, sent = time.monotonic() + seconds, 0
    stock = f"/v1/products/{product_id}/stock"
    while time.monotonic() < deadline:
        client.get(f"/v1/products/{product_id}", headers=auth())
        client.get("/v1/products?limit=5", headers=auth())
        client.post(stock, json={"delta": 1, "reason": "restock"}, headers=auth())
        client.post(stock, json={"delta": -1000, "reason": "too many"}, headers=auth())
        client.get("/v1/nowhere", headers=auth())
        client.get("/readyz")
        sent += 6
        time.sleep(0.02)
    return sent


def _queries() -> list[tuple[str, str]]:
    values = {**GRAFANA_BUILTINS, "namespace": NS, "job": "catalog"}
    found = []
    for title, expr in panel_queries(dashboard(NS)):
        expr = substitute(expr, values)
        if not {s.name for s in selectors(expr)} & ABSENT_HERE:
            found.append((title, expr))
    return found


def test_every_recording_rule_and_dashboard_query_returns_data(prometheus_binary, helm, tmp_path: Path) -> None:
    groups = rule_groups(NS)
    for group in groups:  # every group each second, so a 5-minute group is not waited for
        group.pop("interval", None)
    rule_file = write_rule_file(groups, tmp_path / "rules.yaml")
    recorded = sorted({rule["record"] for rule in rules(groups, "record")})
    queries = _queries()
    kubelet_and_kube_state = {"CPU by pod", "Memory (working set) by pod", "Container restarts (1h)"}
    assert {title for title, _ in queries} == PANELS - kubelet_and_kube_state

    env = server_env(migrated_sqlite_url(tmp_path), tmp_path / "metrics")
    with ServerProcess(env, workers=2) as server:
        server.start()
        target = {"targets": [f"127.0.0.1:{server.port}"], "labels": {"namespace": NS, "pod": "catalog-e2e-0"}}
        with Prometheus(prometheus_binary, tmp_path, [target], [rule_file]) as prometheus:
            prometheus.start()
            with httpx.Client(base_url=server.url, timeout=10) as client:
                product = create_product(client, stock=5)
                assert _load(client, product["id"], LOAD_SECONDS) > 100

            missing: list[str] = []
            deadline = time.monotonic() + DATA_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                missing = [f"recording rule {n}" for n in recorded if not prometheus.query(f'{n}{{namespace="{NS}"}}')]
                missing += [f"panel {t!r}: {e}" for t, e in queries if not prometheus.query(e)]
                if not missing:
                    break
                time.sleep(1)
            unhealthy = [r for r in prometheus.rule_health() if r["health"] != "ok"]

    assert not missing, "no data:\n" + "\n".join(missing)
    assert not unhealthy, unhealthy
