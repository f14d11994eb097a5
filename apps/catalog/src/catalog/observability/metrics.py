"""Prometheus metrics that stay correct with several Sanic worker processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Latency buckets (seconds) around the service's 250 ms objective.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty the directory and point prometheus-client at it; must run before it is imported
    by any worker (workers inherit the environment)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The service's metrics, on a registry of their own so every app (and test) starts at zero."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_duration = Histogram(
            "catalog_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "catalog_http_requests_in_flight",
            "Requests being handled now.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.stock_adjustments = Counter(
            "catalog_stock_adjustments_total",
            "Stock adjustment attempts by outcome (applied, insufficient).",
            ["outcome"],
            registry=self.registry,
        )
        self.db_errors = Counter(
            "catalog_db_errors_total",
            "Requests (/readyz included) answered 503 because the database was unavailable.",
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        if multiprocess_enabled():
            # Sum every worker's files; a per-process registry would show one worker's share.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def forget_worker(pid: int) -> None:
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)
