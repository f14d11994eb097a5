"""What the process tier (and the e2e tests) do around a live `catalog serve`: its environment, a
database migrated by the real command, products made through the API, scrapes, polls, trace
contexts, and database locks held from outside the server."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import catalog_env, run_catalog
from tests.support.tokens import AUDIENCE, ISSUER, TEST_SECRET, auth

PRODUCT_ROUTE = "/v1/products/{product_id}"
# How many times the fault tests under load (database stopped and frozen, shutdown) run: once in
# `make test`; `make chaos` sets more, to find what one run in a few would show. Capped: bounded.
CHAOS_ITERATIONS_MAX = 50


def chaos_rounds() -> list[Any]:
    """The rounds of a fault test under load, CHAOS_ITERATIONS of them (1 unless set)."""
    iterations = int(os.environ.get("CHAOS_ITERATIONS", "1"))
    if not 1 <= iterations <= CHAOS_ITERATIONS_MAX:
        raise ValueError(f"CHAOS_ITERATIONS must be 1..{CHAOS_ITERATIONS_MAX}, got {iterations}")
    return [pytest.param(n, id=f"round-{n}") for n in range(iterations)]


def server_env(database_url: str, metrics_dir: Path, **values: str) -> dict[str, str]:
    return catalog_env(
        DATABASE_URL=database_url,
        CATALOG_JWT_SECRET=TEST_SECRET,
        CATALOG_JWT_ISSUER=ISSUER,
        CATALOG_JWT_AUDIENCE=AUDIENCE,
        CATALOG_METRICS_DIR=str(metrics_dir),
        CATALOG_LOG_LEVEL="INFO",
        **values,
    )


def migrated_sqlite_url(directory: Path) -> str:
    """A SQLite file migrated by the real `catalog migrate` command."""
    url = f"sqlite://{directory}/catalog.sqlite3"
    result = run_catalog("migrate", env=server_env(url, directory / "metrics-migrate"))
    assert result.returncode == 0, result.stderr
    return url


def create_product(client: httpx.Client, stock: int) -> dict[str, Any]:
    slug = f"cat-{secrets.token_hex(4)}"
    response = client.post("/v1/categories", json={"slug": slug, "name": "Lamps"}, headers=auth())
    assert response.status_code == 201, response.text
    body = {
        "sku": f"SKU-{secrets.token_hex(4)}",
        "name": "Desk lamp",
        "category": slug,
        "price": "19.99",
        "currency": "EUR",
        "stock": stock,
    }
    response = client.post("/v1/products", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return response.json()


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def wait_until(condition: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.05) -> Any:
    """Poll `condition` every `interval` seconds until it returns something truthy (that result);
    fail after `timeout` seconds. A condition that asks the apiserver wants a longer interval."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


class SqliteWriteLock:
    """Holds SQLite's write lock from outside the server (BEGIN EXCLUSIVE on the same file)."""

    def __init__(self, database_url: str) -> None:
        self._path = database_url.removeprefix("sqlite://")
        self._connection: sqlite3.Connection | None = None

    def hold(self, product_id: str) -> None:
        self._connection = sqlite3.connect(self._path, isolation_level=None, timeout=5)
        self._connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None


class PostgresRowLock:
    """Holds the product's row lock from outside the server (SELECT ... FOR UPDATE, transaction open)."""

    def __init__(self, database_url: str) -> None:
        self._dsn = database_url.replace("postgres://", "postgresql://", 1)
        self._runner: asyncio.Runner | None = None
        self._connection: asyncpg.Connection | None = None

    def hold(self, product_id: str) -> None:
        self._runner = asyncio.Runner()
        self._connection = self._runner.run(asyncpg.connect(self._dsn, timeout=10))
        self._runner.run(self._connection.execute("BEGIN"))
        self._runner.run(self._connection.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", product_id))

    def release(self) -> None:
        if self._runner is not None and self._connection is not None:
            self._runner.run(self._connection.execute("ROLLBACK"))
            self._runner.run(self._connection.close(timeout=5))
        if self._runner is not None:
            self._runner.close()
        self._runner = self._connection = None
