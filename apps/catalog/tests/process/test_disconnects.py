"""Clients that hang up mid-write: Sanic cancels their handlers, and a cancellation while Tortoise
opens a transaction must not keep the worker's connection (or SQLite lock) for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.support.process_tier import create_product
from tests.support.server import ServerProcess
from tests.support.tokens import auth

pytestmark = pytest.mark.process
ROUNDS, CLIENTS = 6, 64


async def _hang_up_mid_request(url: str, after_seconds: float) -> None:
    """Start CLIENTS writes at once, then drop every connection before most have answered."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    client = httpx.AsyncClient(limits=limits, timeout=30)
    body = {"delta": 1, "reason": "hang-up"}
    tasks = [asyncio.create_task(client.post(url, json=body, headers=auth())) for _ in range(CLIENTS)]
    await asyncio.sleep(after_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def test_writes_still_served_after_clients_hang_up(
    request: pytest.FixtureRequest, serve: Callable[..., ServerProcess], database: str
) -> None:
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    server = serve(url, workers=2, CATALOG_DB_POOL_MAX="4")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        product = create_product(client, stock=0)
        stock_url = f"{server.url}/v1/products/{product['id']}/stock"

        for round_number in range(ROUNDS):
            asyncio.run(_hang_up_mid_request(stock_url, after_seconds=0.05 + 0.03 * round_number))
            # Both workers must still take a write: a leaked lock or connection makes this time out.
            for _ in range(4):
                after = client.post(stock_url, json={"delta": 1, "reason": "after"}, headers=auth(), timeout=8)
                assert after.status_code == 201, f"round {round_number}: {after.text}"
