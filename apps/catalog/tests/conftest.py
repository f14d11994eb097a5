"""Fixtures: a fresh app per test on SQLite (a file under tmp_path) or on a real PostgreSQL,
tokens signed the way the app verifies them, and the API client."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from catalog.app import create_app
from catalog.db import migrate
from catalog.settings import Settings

from .postgres_server import PostgresServer, find_bindir, throwaway_server

PROBLEM_JSON = "application/problem+json"
TEST_SECRET = "test-secret-of-at-least-thirty-two-bytes!"
ISSUER, AUDIENCE = "catalog-test", "catalog-api"
_app_names = itertools.count()
_db_names = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test with no tier marker is a unit test."""
    tiers = {"pg", "process", "unit"}
    for item in items:
        if not tiers.intersection(m.name for m in item.iter_markers()):
            item.add_marker(pytest.mark.unit)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the test app; an override of None removes that claim."""
    now = int(time.time())
    values = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "scope": "catalog:read catalog:write",
        **overrides,
    }
    return {k: v for k, v in values.items() if v is not None}


def make_token(secret: str = TEST_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def auth(token: str | None = None, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or make_token()}", **headers}


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": TEST_SECRET,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)


test_settings.__test__ = False


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | str]:
    """TEST_DATABASE_URL when given (the caller owns that server), else a server we start and stop."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql, or set TEST_DATABASE_URL)")
    with throwaway_server(bindir, prefix="catalog-pg-") as server:
        yield server


def _admin_url(postgres: PostgresServer | str) -> str:
    return postgres if isinstance(postgres, str) else postgres.url


def admin_sql(postgres: PostgresServer | str, *statements: str) -> None:
    """Run statements (CREATE/DROP DATABASE) on the server's maintenance database."""

    async def run() -> None:
        conn = await asyncpg.connect(_admin_url(postgres).replace("postgres://", "postgresql://", 1))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer | str) -> str:
    """A database migrated once; each test gets a copy (CREATE DATABASE ... TEMPLATE) in milliseconds."""
    admin = _admin_url(postgres)
    name = f"catalog_template_{os.getpid()}"

    admin_sql(postgres, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    asyncio.run(migrate(test_settings(_with_database(admin, name))))
    return name


def fresh_pg_database(postgres: PostgresServer | str, template: str) -> str:
    admin = _admin_url(postgres)
    name = f"catalog_test_{os.getpid()}_{next(_db_names)}"

    admin_sql(postgres, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _with_database(admin, name)


def drop_pg_database(postgres: PostgresServer | str, name: str) -> None:
    admin_sql(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same API suite runs on both engines."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/catalog.sqlite3"
        asyncio.run(migrate(test_settings(url)))
        yield url
        return
    postgres = request.getfixturevalue("postgres")
    url = fresh_pg_database(postgres, request.getfixturevalue("pg_template"))
    yield url
    # Each copy is ~8 MB: drop it now rather than leave hundreds to the server's teardown.
    drop_pg_database(postgres, url.rsplit("/", 1)[1])


@pytest.fixture
def settings(database_url: str) -> Settings:
    return test_settings(database_url)


@pytest.fixture
def app(settings: Settings):
    # Tortoise caches SQL per table, not per dialect; one process here switches SQLite <-> PostgreSQL.
    EXECUTOR_CACHE.clear()
    app = create_app(settings, name=f"catalog_test_{next(_app_names)}")
    yield app
    asyncio.run(Tortoise.close_connections()) if Tortoise._inited else None


@pytest.fixture
def client(app):
    return app.asgi_client


@pytest.fixture
async def category(client) -> dict[str, Any]:
    _, response = await client.post("/v1/categories", json={"slug": "lamps", "name": "Lamps"}, headers=auth())
    assert response.status == 201, response.text
    return response.json


@pytest.fixture
async def product(client, category) -> dict[str, Any]:
    body = {"sku": "LAMP-1", "name": "Desk lamp", "category": "lamps", "price": "19.99", "currency": "EUR", "stock": 5}
    _, response = await client.post("/v1/products", json=body, headers=auth())
    assert response.status == 201, response.text
    return response.json


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """The response is problem+json of this type; returns its body."""
    assert response.status == status, response.text
    assert response.content_type == PROBLEM_JSON
    body = response.json
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    return body


@asynccontextmanager
async def served(app: Any, client: Any) -> AsyncIterator[Callable[..., Awaitable[httpx.Response]]]:
    """Requests to an app started once. The test client starts and stops the app (and the ORM)
    around every request: concurrent requests through it close each other's database, and a
    loop of requests pays the ORM start each time."""
    app.router.reset()
    app.signal_router.reset()
    await app._startup()
    await app._server_event("init", "before")
    await app._server_event("init", "after")

    async def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await httpx.AsyncClient.request(client, method, url, **kwargs)

    try:
        yield request
    finally:
        await app._server_event("shutdown", "before")
        await app._server_event("shutdown", "after")
