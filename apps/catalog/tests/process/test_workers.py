"""Several worker processes: stock never oversold under concurrency, metrics summed over workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import PROBLEM_JSON
from tests.support.process_tier import create_product, scrape
from tests.support.server import ServerProcess, metrics_pids
from tests.support.tokens import auth

pytestmark = pytest.mark.process


async def _post_all_at_once(url: str, body: dict[str, Any], count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return await asyncio.gather(*(client.post(url, json=body, headers=auth()) for _ in range(count)))


async def _get_many(url: str, count: int, clients: int) -> list[int]:
    # No keep-alive: every request is a new connection, which either worker may accept.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(count)))
    return [r.status_code for r in responses]


@pytest.mark.pg
def test_adjust_stock_never_oversells_across_workers(serve: Callable[..., ServerProcess], pg_url: str) -> None:
    server = serve(pg_url, workers=2)
    reason = "process-test: 50 concurrent decrements"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        product = create_product(client, stock=20)
        path = f"/v1/products/{product['id']}"

        responses = asyncio.run(_post_all_at_once(f"{server.url}{path}/stock", {"delta": -1, "reason": reason}, 50))
        final = client.get(path, headers=auth())
        ledger = client.get(f"{path}/stock-movements", params={"limit": 100}, headers=auth())

    assert Counter(r.status_code for r in responses) == {201: 20, 409: 30}
    refusals = [r for r in responses if r.status_code == 409]
    assert {r.headers["content-type"] for r in refusals} == {PROBLEM_JSON}
    assert all(r.json()["type"].endswith("/insufficient-stock") for r in refusals)
    assert {r.json()["stock"] for r in refusals} == {0}
    assert sorted(r.json()["resulting_stock"] for r in responses if r.status_code == 201) == list(range(20))
    assert final.json()["stock"] == 0
    movements = ledger.json()["items"]
    assert ledger.json()["next_cursor"] is None
    assert [(m["delta"], m["reason"], m["resulting_stock"]) for m in movements[:1]] == [(20, "initial stock", 20)]
    ours = [m for m in movements if m["reason"] == reason]
    assert len(movements) == 1 + len(ours)
    assert {m["delta"] for m in ours} == {-1}
    assert sorted(m["resulting_stock"] for m in ours) == list(range(20))
    # Which worker accepts each connection is the kernel's choice; the pool's connections make
    # the adjustments concurrent on PostgreSQL even when one worker took all 50.


def test_metrics_count_every_request_across_workers(serve: Callable[..., ServerProcess], sqlite_url: str) -> None:
    server = serve(sqlite_url, workers=2)
    livez = (
        "catalog_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/livez"), ("status", "200")),
    )
    before = scrape(server.url).get(livez, 0.0)  # the readiness polls of ServerProcess.start

    # The kernel picks the worker per connection: send batches until both have answered (bounded).
    statuses: list[int] = []
    for _ in range(10):
        statuses += asyncio.run(_get_many(f"{server.url}/livez", 100, clients=8))
        if len(metrics_pids(server.metrics_dir)) == 2:
            break
    after = scrape(server.url)[livez]

    assert len(metrics_pids(server.metrics_dir)) == 2, "both workers should have answered some of them"
    assert statuses == [200] * len(statuses)
    assert after - before == len(statuses)
