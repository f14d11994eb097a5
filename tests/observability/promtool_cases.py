"""Builds `promtool test rules` files from traffic described in phases, so each alert case reads
as "this traffic for this long, then these alerts fire at these times". Series are what the
ServiceMonitor scrape would produce (one sample a minute), target labels included."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

POD = "catalog-7d9f8-abcde"
JOB = "catalog"
API_ROUTE = "/v1/products/{product_id}"
HISTOGRAM = "catalog_http_request_duration_seconds"
THRESHOLD_LE = "0.25"


@dataclass(frozen=True)
class Phase:
    """Per-second rates held for `minutes` (one scrape a minute)."""

    minutes: int
    rps: float = 10.0  # API requests (not probes)
    error_ratio: float = 0.0  # share answered 503
    slow_ratio: float = 0.0  # share slower than the latency threshold
    probe_rps: float = 0.0  # /readyz calls answered 200, always fast
    probe_failing_rps: float = 0.0  # /readyz calls answered 503
    db_errors_rps: float = 0.0
    stock_applied_rps: float = 0.0
    stock_insufficient_rps: float = 0.0
    restarts_per_minute: float = 0.0
    up: int | None = 1  # None: no target at all


@dataclass
class Series:
    """A counter (or gauge) built minute by minute; rendered in promtool's expanding notation."""

    labels: dict[str, str]
    values: list[float] = field(default_factory=list)
    gauge: bool = False

    def extend(self, minutes: int, per_minute: float | None) -> None:
        for _ in range(minutes):
            if per_minute is None:
                self.values.append(float("nan"))  # stale: no sample
            elif self.gauge:
                self.values.append(per_minute)
            else:
                self.values.append((self.values[-1] if self.values else 0.0) + per_minute)

    def notation(self) -> str:
        return " ".join("_" if v != v else f"{v:.12g}" for v in self.values)


def _traffic_series(namespace: str, phases: list[Phase]) -> list[Series]:
    target = {"namespace": namespace, "job": JOB, "pod": POD, "instance": "10.0.0.7:8000"}

    def counter(name: str, **labels: str) -> Series:
        return Series({"__name__": name, **target, **labels})

    api = {"method": "GET", "route": API_ROUTE}
    readyz = {"method": "GET", "route": "/readyz"}
    found: dict[str, tuple[Series, Any]] = {
        "ok": (counter(f"{HISTOGRAM}_count", **api, status="200"), lambda p: p.rps * (1 - p.error_ratio)),
        "err": (counter(f"{HISTOGRAM}_count", **api, status="503"), lambda p: p.rps * p.error_ratio),
        "ok_fast": (
            counter(f"{HISTOGRAM}_bucket", **api, status="200", le=THRESHOLD_LE),
            lambda p: p.rps * (1 - p.error_ratio) * (1 - p.slow_ratio),
        ),
        "err_fast": (
            counter(f"{HISTOGRAM}_bucket", **api, status="503", le=THRESHOLD_LE),
            lambda p: p.rps * p.error_ratio * (1 - p.slow_ratio),
        ),
        "probe_ok": (counter(f"{HISTOGRAM}_count", **readyz, status="200"), lambda p: p.probe_rps),
        "probe_ok_fast": (
            counter(f"{HISTOGRAM}_bucket", **readyz, status="200", le=THRESHOLD_LE),
            lambda p: p.probe_rps,
        ),
        "probe_503": (counter(f"{HISTOGRAM}_count", **readyz, status="503"), lambda p: p.probe_failing_rps),
        "db": (counter("catalog_db_errors_total"), lambda p: p.db_errors_rps),
        "applied": (counter("catalog_stock_adjustments_total", outcome="applied"), lambda p: p.stock_applied_rps),
        "insufficient": (
            counter("catalog_stock_adjustments_total", outcome="insufficient"),
            lambda p: p.stock_insufficient_rps,
        ),
        "restarts": (
            Series(
                {
                    "__name__": "kube_pod_container_status_restarts_total",
                    "namespace": namespace,
                    "pod": POD,
                    "container": "catalog",
                    "job": "kube-state-metrics",
                }
            ),
            lambda p: p.restarts_per_minute / 60,
        ),
    }
    up = Series({"__name__": "up", **target}, gauge=True)
    for phase in phases:
        for series, per_second in found.values():
            series.extend(phase.minutes, per_second(phase) * 60)
        up.extend(phase.minutes, None if phase.up is None else float(phase.up))
    return [series for series, _ in found.values()] + [up]


def _selector(labels: dict[str, str]) -> str:
    name = labels["__name__"]
    rest = ", ".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
    return f"{name}{{{rest}}}"


def promtool_test_file(
    rule_file: str,
    traffic: dict[str, list[Phase]],
    expected: dict[str, set[str]],
    alert_names: list[str],
    alert_labels: dict[str, dict[str, str]],
    promql: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One promtool test: `traffic` per namespace; `expected` maps an eval time ("65m") to the
    alerts that must be firing then. Every alert in `alert_names` is checked at every time, so
    an alert that should stay silent is asserted silent."""
    series = [s for namespace, phases in traffic.items() for s in _traffic_series(namespace, phases)]
    checks = [
        {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [{"exp_labels": alert_labels[name]}] if name in firing else [],
        }
        for at, firing in expected.items()
        for name in alert_names
    ]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": _selector(s.labels), "values": s.notation()} for s in series],
                "alert_rule_test": checks,
                "promql_expr_test": promql or [],
            }
        ],
    }
