"""The bench's data: a throwaway PostgreSQL server (the tests' own helper), databases migrated by the
real `catalog migrate`, products seeded in SQL (generate_series on PostgreSQL, one executemany on
SQLite; never through the API), and the files the wrk scripts read (ids, list paths, deep cursors)."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg

from catalog.products.pagination import encode_cursor
from tests.support.postgres import PostgresServer, find_bindir, throwaway_server

CATEGORIES = 20
# Products created by the POST benchmark go here, so the seeded categories keep their sizes.
CREATED_CATEGORY = "bench-created"
LIST_LIMIT = 20
SAMPLE_IDS = 1000

_PG_CATEGORIES = """
INSERT INTO categories (slug, name, description, created_at, updated_at)
SELECT 'cat-' || g, 'Category ' || g, '', now(), now() FROM generate_series(1, $1::int) g
UNION ALL SELECT $2::text, 'Created by make bench', '', now(), now()
"""
_PG_PRODUCTS = """
INSERT INTO products (id, sku, name, description, category_id, price_units, currency, stock, status,
                      version, created_at, updated_at)
SELECT gen_random_uuid(), 'SKU-' || lpad(g::text, 8, '0'), 'Product ' || md5(g::text), 'Seeded by make bench',
       c.id, (100 + g % 9900) * 10000, 'EUR', 1000, 'active', 1, now() - make_interval(secs => g), now()
FROM generate_series(1, $1::int) g JOIN categories c ON c.slug = 'cat-' || (1 + g % $2::int)
"""
# The deep page of each category starts after the row 90% of the way through it, in the list's
# default order (name, id): the page a client reaches after paging through 90% of the category.
_DEEP_ROWS = """
SELECT c.slug, p.name, p.id FROM (
    SELECT category_id, name, id, row_number() OVER (PARTITION BY category_id ORDER BY name, id) AS position,
           count(*) OVER (PARTITION BY category_id) AS total
    FROM products
) p JOIN categories c ON c.id = p.category_id
WHERE p.position = p.total * 9 / 10
ORDER BY c.slug
"""


@dataclass
class Dataset:
    """A seeded database and the wrk inputs made from it."""

    url: str
    products: int
    ids_file: Path
    get_paths_file: Path
    list_paths_file: Path
    deep_paths_file: Path


def postgres() -> contextlib.AbstractContextManager[PostgresServer]:
    """The bench's PostgreSQL server, stopped and removed when the context ends."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    # A directory of its own: the postgres user cannot enter the bench's private (0700) scratch dir.
    return throwaway_server(bindir, prefix="catalog-bench-pg-")


def migrate(url: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "catalog", "migrate"],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"catalog migrate failed for {url}:\n{result.stdout}{result.stderr}")


async def create_postgres_database(server: PostgresServer, name: str) -> str:
    connection = await asyncpg.connect(server.url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.url_for(name)


async def seed_postgres(url: str, products: int, workdir: Path) -> Dataset:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(_PG_CATEGORIES, CATEGORIES, CREATED_CATEGORY)
        await connection.execute(_PG_PRODUCTS, products, CATEGORIES)
        await connection.execute("ANALYZE")
        ids = [
            str(r["id"])
            for r in await connection.fetch("SELECT id FROM products ORDER BY random() LIMIT $1", SAMPLE_IDS)
        ]
        deep = [(r["slug"], r["name"], str(r["id"])) for r in await connection.fetch(_DEEP_ROWS)]
    finally:
        await connection.close()
    return _write_inputs(url, products, ids, deep, workdir)


def seed_sqlite(path: Path, products: int, workdir: Path) -> Dataset:
    now = datetime.now(UTC)
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.executemany(
            "INSERT INTO categories (id, slug, name, description, created_at, updated_at) VALUES (?, ?, ?, '', ?, ?)",
            [
                (n, slug, f"Category {n}", _sqlite_time(now), _sqlite_time(now))
                for n, slug in enumerate([*(f"cat-{g}" for g in range(1, CATEGORIES + 1)), CREATED_CATEGORY], 1)
            ],
        )
        connection.executemany(
            "INSERT INTO products (id, sku, name, description, category_id, price_units, currency, stock, status,"
            " version, created_at, updated_at) VALUES (?, ?, ?, 'Seeded by make bench', ?, ?, 'EUR', 1000, 'active',"
            " 1, ?, ?)",
            (
                (
                    str(uuid.uuid4()),
                    f"SKU-{g:08d}",
                    "Product " + hashlib.md5(str(g).encode(), usedforsecurity=False).hexdigest(),
                    1 + g % CATEGORIES,  # categories were inserted with ids 1..CATEGORIES in slug order
                    (100 + g % 9900) * 10_000,
                    _sqlite_time(now - timedelta(seconds=g)),
                    _sqlite_time(now),
                )
                for g in range(1, products + 1)
            ),
        )
        connection.execute("ANALYZE")
        ids = [r[0] for r in connection.execute("SELECT id FROM products ORDER BY random() LIMIT ?", (SAMPLE_IDS,))]
        deep = list(connection.execute(_DEEP_ROWS))
    return _write_inputs(f"sqlite://{path}", products, ids, deep, workdir)


def _sqlite_time(moment: datetime) -> str:
    return moment.isoformat(" ")  # how Tortoise's SQLite client stores a DatetimeField


def _write_inputs(url: str, products: int, ids: list[str], deep: list[tuple[str, str, str]], workdir: Path) -> Dataset:
    workdir.mkdir(parents=True, exist_ok=True)
    first_pages = [f"/v1/products?category=cat-{g}&limit={LIST_LIMIT}" for g in range(1, CATEGORIES + 1)]
    # Cursors made by the service's own encoder, exactly as a client would get them after many pages.
    deep_pages = [
        f"/v1/products?category={slug}&limit={LIST_LIMIT}&cursor={quote(encode_cursor('name', name, row_id))}"
        for slug, name, row_id in deep
    ]
    files = {}
    for kind, lines in {
        "ids": ids,
        "get": [f"/v1/products/{i}" for i in ids],
        "list": first_pages,
        "deep": deep_pages,
    }.items():
        files[kind] = workdir / f"{kind}.txt"
        files[kind].write_text("\n".join(lines) + "\n")
    return Dataset(url, products, files["ids"], files["get"], files["list"], files["deep"])


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="catalog-bench-"))
