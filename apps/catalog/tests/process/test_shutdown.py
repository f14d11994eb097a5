"""SIGTERM and database outages: readiness drains, in-flight work finishes, reads recover."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.api import PROBLEM_JSON
from tests.support.postgres import PostgresServer
from tests.support.process_tier import PostgresRowLock, SqliteWriteLock, create_product, scrape, server_env, wait_until
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
