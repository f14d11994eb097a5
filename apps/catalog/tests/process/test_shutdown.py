"""SIGTERM and database outages: readiness drains, in-flight work finishes, reads recover; under
keep-alive load with several workers, the shutdown fails no request sent before the listener closed."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.api import PROBLEM_JSON
from tests.support.otlp import OtlpReceiver
from tests.support.postgres import PostgresServer
from tests.support.process_tier import (
    PostgresRowLock,
    SqliteWriteLock,
    chaos_rounds,
    create_product,
    scrape,
    server_env,
    traceparent,
    wait_until,
)
from tests.support.server import ServerProcess, run_catalog
from tests.support.tokens import auth

pytestmark = pytest.mark.process


def test_serve_sigterm_drains_then_finishes_in_flight_request(
    serve: Callable[..., ServerProcess], engine: tuple[str, SqliteWriteLock | PostgresRowLock]
) -> None:
    database_url, lock = engine
    drain, graceful = 1.5, 8.0
    # The adjustment waits on the lock through the drain: longer than the default database deadline.
    server = serve(
        database_url,
        CATALOG_DRAIN_SECONDS=str(drain),
        CATALOG_GRACEFUL_SHUTDOWN_SECONDS=str(graceful),
        CATALOG_DB_TIMEOUT_SECONDS="15",
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        product = create_product(client, stock=5)
    in_flight = ("catalog_http_requests_in_flight", ())

    lock.hold(product["id"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            slow = pool.submit(
                httpx.post,
                f"{server.url}/v1/products/{product['id']}/stock",
                json={"delta": -1, "reason": "slow"},
                headers=auth(),
                timeout=20,
            )
            # The scrape counts itself: 2 means the adjustment is inside the server, waiting for the lock.
            wait_until(lambda: scrape(server.url)[in_flight] >= 2, 5, "the adjustment to be in flight")
            server.terminate()
            stopped_at = time.monotonic()
            draining = wait_until(lambda: _readyz(server.url, 503), 3, "/readyz to answer 503 after SIGTERM")
            assert not slow.done()
            # After the drain the worker stops taking connections; the adjustment is still waiting.
            wait_until(lambda: _readyz(server.url, None) is None, drain + 3, "the listener to close after the drain")
            assert not slow.done()
        finally:
            lock.release()  # also frees the request (and this pool) when an assertion above failed
        adjusted = slow.result(timeout=10)
        code = server.wait(timeout=graceful + 5)

    assert draining.headers["content-type"] == PROBLEM_JSON
    assert draining.json()["type"].endswith("/draining")
    assert int(draining.headers["retry-after"]) > 0
    assert adjusted.status_code == 201, adjusted.text
    assert adjusted.json()["resulting_stock"] == 4
    assert code == 0, server.output_tail()
    assert time.monotonic() - stopped_at < drain + graceful
    assert server.wait_for_record(lambda r: r["message"] == "draining")["drain_seconds"] == drain
    assert [r["message"] for r in server.log_records() if r["level"] == "ERROR"] == []


def _readyz(base_url: str, status: int | None) -> httpx.Response | None:
    """The /readyz response when its status is `status` (None: any answer), else None; None also
    when nothing answers within 0.5 s (a closed listener)."""
    try:
        response = httpx.get(f"{base_url}/readyz", timeout=0.5)
    except httpx.HTTPError:
        return None
    return response if status is None or response.status_code == status else None


@pytest.mark.pg
def test_serve_database_outage_answers_503_then_recovers(
    serve: Callable[..., ServerProcess], own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.url
    assert run_catalog("migrate", env=server_env(url, tmp_path / "metrics-migrate")).returncode == 0
    server = serve(url)
    with httpx.Client(base_url=server.url, timeout=8) as client:
        product = create_product(client, stock=1)
        path = f"/v1/products/{product['id']}"
        assert client.get(path, headers=auth()).status_code == 200

        own_postgres.stop("immediate")
        during = client.get(path, headers=auth())
        ready_during = client.get("/readyz")
        live_during = client.get("/livez")
        db_errors = scrape(server.url)[("catalog_db_errors_total", ())]
        own_postgres.restart()
        after = wait_until(
            lambda: (r := client.get(path, headers=auth())).status_code == 200 and r, 15, "reads to recover"
        )

    assert during.status_code == 503, during.text
    assert during.headers["content-type"] == PROBLEM_JSON
    assert during.json()["type"].endswith("/database-unavailable")
    assert int(during.headers["retry-after"]) > 0
    assert ready_during.status_code == 503
    assert ready_during.json()["type"].endswith("/database-unavailable")
    assert live_during.status_code == 200
    assert db_errors == 2  # the product read and the readiness check
    assert after.json()["id"] == product["id"]
    assert server.poll() is None, "the app must not have restarted"


# The shutdown under keep-alive load: several workers, busy clients that reuse their connections,
# an idle keep-alive connection, a request in flight across the end of the drain.
LOAD_DRAIN_SECONDS = 1.5
LOAD_GRACEFUL_SECONDS = 20.0  # the default: the bound on the exit, not a wait
LOAD_CLIENTS = 4


@dataclass(frozen=True)
class Sent:
    started: float  # wall clock, to compare with the server's log records
    finished: float
    status: int | str  # an HTTP status, or the transport error's name
    connection: str | None  # the Connection header of the response
    trace_id: str


class KeepAliveLoad:
    """LOAD_CLIENTS threads, each with its own connection pool (keep-alive, as browsers and
    proxies do), reading products until stop(); each request carries a trace id of its own."""

    def __init__(self, base_url: str, product_id: str) -> None:
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(base_url, f"/v1/products/{product_id}"), daemon=True)
            for _ in range(LOAD_CLIENTS)
        ]
        for thread in self._threads:
            thread.start()

    def _client(self, base_url: str, path: str) -> None:
        with httpx.Client(base_url=base_url, timeout=LOAD_GRACEFUL_SECONDS) as client:
            while not self._stop.is_set():
                trace_id, header = traceparent()
                started = time.time()
                try:
                    response = client.get(path, headers=auth(traceparent=header))
                except httpx.TransportError as exc:
                    self.sent.append(Sent(started, time.time(), type(exc).__name__, None, trace_id))
                    time.sleep(0.05)  # a refused connection fails at once: do not spin
                    continue
                connection = response.headers.get("connection")
                self.sent.append(Sent(started, time.time(), response.status_code, connection, trace_id))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=LOAD_GRACEFUL_SECONDS + 5)


def _refused(port: int) -> bool:
    """A new connection is refused (not accepted, and not left hanging). A SYN sent as the listener
    closes is dropped; the kernel's retry 1 s later is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except ConnectionRefusedError:
        return True
    except TimeoutError:
        return False
    return False


def _keep_alive_connection(port: int) -> socket.socket:
    """A connection that has had one answer and stays open, idle, as a keep-alive client leaves it."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(b"GET /livez HTTP/1.1\r\nHost: catalog\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b'"ok"}'):
        answer += connection.recv(4096)
    assert b"connection: keep-alive" in answer.lower(), answer
    return connection


def _waiting_on_a_lock(database_url: str) -> bool:
    async def count() -> int:
        connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1), timeout=10)
        try:
            return await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        finally:
            await connection.close()

    return asyncio.run(count()) > 0


def _when(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["time"]).timestamp()


@pytest.mark.pg
@pytest.mark.parametrize("chaos_round", chaos_rounds())
def test_serve_sigterm_under_keep_alive_load_with_workers(
    serve: Callable[..., ServerProcess], pg_url: str, otlp_receiver: OtlpReceiver, chaos_round: int
) -> None:
    server = serve(
        pg_url,
        workers=2,
        CATALOG_DRAIN_SECONDS=str(LOAD_DRAIN_SECONDS),
        CATALOG_GRACEFUL_SHUTDOWN_SECONDS=str(LOAD_GRACEFUL_SECONDS),
        CATALOG_DB_TIMEOUT_SECONDS="10",  # the locked adjustment waits through the drain
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        read, locked = create_product(client, stock=5), create_product(client, stock=5)
    idle = _keep_alive_connection(server.port)
    lock = PostgresRowLock(pg_url)
    load = KeepAliveLoad(server.url, read["id"])
    try:
        wait_until(lambda: len(load.sent) >= 40, 20, "the load to be under way")
        lock.hold(locked["id"])
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(
                httpx.post,
                f"{server.url}/v1/products/{locked['id']}/stock",
                json={"delta": -1, "reason": "in flight"},
                headers=auth(),
                timeout=LOAD_GRACEFUL_SECONDS + 10,
            )
            wait_until(lambda: _waiting_on_a_lock(pg_url), 10, "the adjustment to wait on the row lock")
            terminated = time.time()
            server.terminate()
            draining = wait_until(lambda: _readyz(server.url, 503), 2, "/readyz to answer 503 after SIGTERM")
            wait_until(lambda: _refused(server.port), LOAD_DRAIN_SECONDS + 5, "new connections to be refused")
            refused = time.time()
            assert not in_flight.done()
            lock.release()
            adjusted = in_flight.result(timeout=LOAD_GRACEFUL_SECONDS)
        idle.settimeout(LOAD_GRACEFUL_SECONDS)
        idle_after = idle.recv(4096)  # b"": the server closed it
        refused_later = [_refused(server.port) for _ in range(3)]
        time.sleep(0.3)  # the clients meet the closed listener too
    finally:
        load.stop()
        lock.release()
        idle.close()
    code = server.wait(timeout=LOAD_GRACEFUL_SECONDS + 5)
    exited = time.time()

    records = server.log_records()
    workers = {int(m.group(1)) for r in records if (m := re.fullmatch(r"Starting worker \[(\d+)\]", r["message"]))}
    drained = [_when(r) for r in records if r["message"] == "draining"]
    # The listener is shared: it closes when the last worker closes its copy, just after this record.
    closing = [_when(r) for r in records if r["message"] == "closing the listener"]
    before = [s for s in load.sent if s.finished < terminated]
    after_drain_began = [s for s in load.sent if s.started > max(drained)]
    failed = [s for s in load.sent if not isinstance(s.status, int)]
    print(
        f"\nsent {len(load.sent)}: {len(before)} answered before SIGTERM, {Counter(s.status for s in load.sent)}; "
        f"listener closed {max(closing) - terminated:.2f} s, refused {refused - terminated:.2f} s, "
        f"exited {exited - terminated:.2f} s after SIGTERM"
    )
    # Before SIGTERM the clients reuse their connections; from the drain on, every answer closes its own.
    assert {s.connection for s in before} == {"keep-alive"}
    assert after_drain_began
    assert {s.connection for s in after_drain_began if s.connection} == {"close"}
    # /readyz says 503 at once; the listener stays open through the drain, then refuses.
    assert draining.json()["type"] == "/problems/draining"
    assert len(closing) == 2
    assert min(closing) - terminated >= LOAD_DRAIN_SECONDS
    assert refused_later == [True, True, True]
    # Not one request that reached the server failed: every failure is a refused connection (nothing
    # was sent), and none was refused before the listener began to close.
    assert {s.status for s in load.sent} - {"ConnectError"} == {200}
    assert [s for s in failed if s.finished < min(closing)] == []
    # The request in flight across the end of the drain finished; the idle connection was closed.
    assert adjusted.status_code == 201, adjusted.text
    assert adjusted.headers["connection"] == "close"
    assert idle_after == b""
    # Every worker ran its stop hooks: spans flushed (every answer's span reached the receiver), pools closed.
    assert len(workers) == 2
    stopped = {r["pid"]: r for r in records if r["message"] == "stopped"}
    assert set(stopped) == workers, server.output_tail()
    assert all(r["spans_flushed"] is True and r["database_closed"] is True for r in stopped.values())
    exported = {span.trace_id.hex() for _, span in otlp_receiver.spans()}
    assert {s.trace_id for s in load.sent if s.status == 200} <= exported
    assert code == 0, server.output_tail()
    assert exited - terminated < LOAD_DRAIN_SECONDS + LOAD_GRACEFUL_SECONDS
    assert [r["message"] for r in records if r["level"] == "ERROR"] == []
    assert not any("Traceback" in line or "Event loop stopped" in line for line in server.stderr), server.stderr
