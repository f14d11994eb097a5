"""Fixtures: a fresh app per test on SQLite (a file under tmp_path) or on a real PostgreSQL, and
the API client. The helpers tests call (tokens, settings, problem checks) live in tests.support."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from catalog.app import create_app
from catalog.db import migrate
from catalog.settings import Settings
from tests.support.api import test_settings
from tests.support.postgres import (
    PostgresServer,
    admin_sql,
    admin_url,
    drop_pg_database,
    find_bindir,
    fresh_pg_database,
    throwaway_server,
    with_database,
)
from tests.support.tokens import auth

_app_names = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test with no tier marker is a unit test."""
    tiers = {"pg", "process", "unit"}
    for item in items:
        if not tiers.intersection(m.name for m in item.iter_markers()):
            item.add_marker(pytest.mark.unit)


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


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer | str) -> str:
    """A database migrated once; each test gets a copy (CREATE DATABASE ... TEMPLATE) in milliseconds."""
    name = f"catalog_template_{os.getpid()}"
    admin_sql(postgres, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    asyncio.run(migrate(test_settings(with_database(admin_url(postgres), name))))
    return name


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
