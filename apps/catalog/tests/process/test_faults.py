"""Database faults under load, on a real PostgreSQL: the server stopped, then frozen (SIGSTOP:
connections stay open and nothing answers) past the request timeout, then resumed. No request
gets a 500 or outlives the request timeout, /readyz answers within its deadline throughout and
recovers without a restart, and the database holds every acknowledged write and no half of one."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from catalog.health import READY_CHECK_TIMEOUT_SECONDS
from tests.support.api import PROBLEM_JSON
from tests.support.postgres import PostgresServer
from tests.support.process_tier import SqliteWriteLock, chaos_rounds, create_product, server_env, wait_until
from tests.support.server import ServerProcess, run_catalog
from tests.support.tokens import auth

pytestmark = [pytest.mark.process, pytest.mark.pg]

REQUEST_TIMEOUT_SECONDS = 6.0
DB_TIMEOUT_SECONDS = 2.0
# Scheduling on a busy 2-core machine: how late an answer may reach the client, on top of a deadline.
SLACK_SECONDS = 1.0
CLIENTS = 3


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int | str  # an HTTP status, or the transport error's name
    seconds: float
    headers: httpx.Headers | None = None
    body: dict[str, Any] | None = None


class Load:
    """CLIENTS threads of reads, stock changes and creates, and a /readyz prober, until stop()."""

    def __init__(self, base_url: str, products: list[dict[str, Any]]) -> None:
        self.outcomes: list[Outcome] = []
        self.ready: list[tuple[float, int | str, float]] = []  # (when, status, seconds)
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._products = [product["id"] for product in products]
        self._category = products[0]["category"]
        timeout = REQUEST_TIMEOUT_SECONDS + 10  # longer than any answer may take, to measure it
        self._threads = [
            threading.Thread(target=self._client, args=(base_url, timeout), daemon=True) for _ in range(CLIENTS)
        ]
        self._threads.append(threading.Thread(target=self._prober, args=(base_url, timeout), daemon=True))
        for thread in self._threads:
            thread.start()

    def _client(self, base_url: str, timeout: float) -> None:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            while not self._stop.is_set():
                i = next(self._counter)
                product = self._products[i % len(self._products)]
                if i % 3 == 0:
                    self._send(client, "read", "GET", f"/v1/products/{product}")
                elif i % 3 == 1:
                    body = {"delta": -1, "reason": f"fault-{i}"}
                    self._send(client, "stock", "POST", f"/v1/products/{product}/stock", json=body)
                else:
                    body = {"sku": f"F-{secrets.token_hex(6)}", "name": "Lamp", "category": self._category}
                    body |= {"price": "1.00", "currency": "EUR", "stock": 3}
                    self._send(client, "create", "POST", "/v1/products", json=body)
                time.sleep(0.02)

    def _send(self, client: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            response = client.request(method, path, headers=auth(), **kwargs)
        except httpx.TransportError as exc:
            self.outcomes.append(Outcome(kind, type(exc).__name__, time.monotonic() - started))
            return
        body = response.json() if response.headers.get("content-type", "").endswith("json") else None
        self.outcomes.append(Outcome(kind, response.status_code, time.monotonic() - started, response.headers, body))

    def _prober(self, base_url: str, timeout: float) -> None:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status: int | str = client.get("/readyz").status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                self.ready.append((started, status, time.monotonic() - started))
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 15)


def _database_rows(url: str) -> tuple[dict[str, int], dict[int, str], dict[str, int], dict[str, int]]:
    """(stock by product, product by movement id, ledger sum by product, initial ledger rows by product)."""

    async def read() -> Any:
        connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=10)
        try:
            products = await connection.fetch("SELECT id::text, stock FROM products")
            movements = await connection.fetch("SELECT id, product_id::text, delta FROM stock_movements")
        finally:
            await connection.close()
        return products, movements

    products, movements = asyncio.run(read())
    ledger: Counter[str] = Counter()
    for row in movements:
        ledger[row["product_id"]] += row["delta"]
    return (
        {row["id"]: row["stock"] for row in products},
        {row["id"]: row["product_id"] for row in movements},
        dict(ledger),
        Counter(row["product_id"] for row in movements),
    )


@pytest.mark.parametrize("chaos_round", chaos_rounds())
def test_database_stopped_then_frozen_under_load(
    own_postgres: PostgresServer, tmp_path: Path, chaos_round: int
) -> None:
    url = own_postgres.url
    env = server_env(
        url,
        tmp_path / "metrics",
        CATALOG_REQUEST_TIMEOUT_SECONDS=str(REQUEST_TIMEOUT_SECONDS),
        CATALOG_DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS),
    )
    assert run_catalog("migrate", env=env).returncode == 0
    with ServerProcess(env, workers=2) as server:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            products = [create_product(client, stock=10_000) for _ in range(4)]

        load = Load(server.url, products)
        try:
            time.sleep(2)
            own_postgres.stop("fast")
            time.sleep(3)
            own_postgres.restart()
            time.sleep(3)
            frozen_at = time.monotonic()
            own_postgres.signal(signal.SIGSTOP)
            try:
                time.sleep(REQUEST_TIMEOUT_SECONDS + 3)
            finally:
                own_postgres.signal(signal.SIGCONT)
            resumed_at = time.monotonic()
            recovered = wait_until(
                lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, 20, "/readyz to recover"
            )
            time.sleep(2)
        finally:
            load.stop()
        assert server.poll() is None, "the service must recover without a restart"
        assert server.stop(timeout=30) == 0

    statuses = Counter((o.kind, o.status) for o in load.outcomes)
    print(f"\noutcomes {dict(statuses)}; readyz {Counter(s for _, s, _ in load.ready)}")
    # Every answer is a success or a 503 problem with Retry-After; no 500, no dropped connection.
    assert {status for _, status in statuses} <= {200, 201, 503}, statuses
    unavailable = [o for o in load.outcomes if o.status == 503]
    assert all(o.headers is not None and o.headers["content-type"] == PROBLEM_JSON for o in unavailable)
    assert all(o.headers is not None and int(o.headers["retry-after"]) > 0 for o in unavailable)
    assert {o.body["type"] for o in unavailable if o.body} <= {"/problems/database-unavailable"}
    # The faults were felt, and the load ran on both sides of them.
    assert statuses[("read", 503)] > 0
    assert statuses[("stock", 201)] > 0
    slowest = max(o.seconds for o in load.outcomes)
    assert slowest <= REQUEST_TIMEOUT_SECONDS + SLACK_SECONDS, slowest
    # /readyz answers within its own deadline, always; 503 while frozen, 200 once resumed.
    assert max(seconds for _, _, seconds in load.ready) <= READY_CHECK_TIMEOUT_SECONDS + SLACK_SECONDS
    frozen = [status for at, status, _ in load.ready if frozen_at + 0.5 < at < resumed_at - 1]
    assert frozen
    assert set(frozen) == {503}, frozen
    assert recovered

    stock, movement_product, ledger, ledger_rows = _database_rows(url)
    # Acknowledged writes are all there: each stock change's movement, each created product.
    acknowledged = [o.body for o in load.outcomes if o.status == 201 and o.body]
    assert {b["id"] for b in acknowledged if "delta" in b} <= set(movement_product)
    assert {b["id"] for b in acknowledged if "sku" in b} <= set(stock)
    # No write is half there: every product's stock is exactly its ledger's sum, and every product
    # has its opening movement (a create that failed left neither row).
    assert stock == ledger
    assert set(ledger_rows) == set(stock)


def test_sqlite_writer_lock_held_past_the_database_deadline(serve, sqlite_url: str) -> None:
    """Another process holds SQLite's write lock longer than CATALOG_DB_TIMEOUT_SECONDS: a write is
    a 503 at that deadline (not a 500, not a request left waiting), changes nothing, and the next
    write after the lock is gone succeeds."""
    server = serve(sqlite_url, CATALOG_DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS))
    lock = SqliteWriteLock(sqlite_url)
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_SECONDS + 10) as client:
        product = create_product(client, stock=5)
        path = f"/v1/products/{product['id']}/stock"
        lock.hold(product["id"])
        try:
            started = time.monotonic()
            blocked = client.post(path, json={"delta": -1, "reason": "blocked"}, headers=auth())
            elapsed = time.monotonic() - started
        finally:
            lock.release()
        after = client.post(path, json={"delta": -1, "reason": "after"}, headers=auth())
        movements = client.get(f"/v1/products/{product['id']}/stock-movements", headers=auth()).json()["items"]

    assert blocked.status_code == 503, blocked.text
    assert blocked.json()["type"] == "/problems/database-unavailable"
    assert int(blocked.headers["retry-after"]) > 0
    assert DB_TIMEOUT_SECONDS <= elapsed <= DB_TIMEOUT_SECONDS + SLACK_SECONDS + 1
    assert after.status_code == 201, after.text
    assert after.json()["resulting_stock"] == 4
    assert [m["reason"] for m in movements][1:] == ["after"]
    assert [r for r in server.log_records() if r["level"] == "ERROR"] == []


def test_serve_starts_while_the_database_is_frozen(own_postgres: PostgresServer, tmp_path: Path) -> None:
    """Nothing at start waits on the database: the workers serve /livez at once, /readyz says 503
    within its deadline while the database does not answer, and 200 once it does, no restart."""
    env = server_env(own_postgres.url, tmp_path / "metrics", CATALOG_DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS))
    assert run_catalog("migrate", env=env).returncode == 0
    own_postgres.signal(signal.SIGSTOP)
    try:
        with ServerProcess(env, workers=2) as server:
            started = time.monotonic()
            server.start(timeout=30)
            ready_after = time.monotonic() - started
            probe_started = time.monotonic()
            frozen = httpx.get(f"{server.url}/readyz", timeout=10)
            probe_seconds = time.monotonic() - probe_started
            own_postgres.signal(signal.SIGCONT)
            wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, 20, "/readyz 200")
            assert server.poll() is None
    finally:
        own_postgres.signal(signal.SIGCONT)

    print(f"\nlivez after {ready_after:.1f} s with the database frozen")
    assert frozen.status_code == 503
    assert frozen.json()["type"] == "/problems/database-unavailable"
    assert probe_seconds <= READY_CHECK_TIMEOUT_SECONDS + SLACK_SECONDS


@pytest.mark.parametrize("command", [pytest.param("migrate", id="migrate"), pytest.param("seed", id="seed")])
def test_command_against_a_frozen_database_exits_with_one_line(
    own_postgres: PostgresServer, tmp_path: Path, command: str
) -> None:
    """A migration job (or a seed) whose database does not answer gives up at its deadline with
    exit 1 and one line saying what did not answer, so the orchestrator restarts it."""
    env = server_env(own_postgres.url, tmp_path / "metrics", CATALOG_DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS))
    own_postgres.signal(signal.SIGSTOP)
    try:
        result = run_catalog(command, env=env, timeout=60)
    finally:
        own_postgres.signal(signal.SIGCONT)

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"catalog: {command}: the database is unavailable or did not answer within CATALOG_DB_TIMEOUT_SECONDS=2 ("
    )
    assert "TimeoutError" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
