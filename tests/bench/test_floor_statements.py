"""The floor (bench/baseline.py) sends the catalog's own statements, so its ratio measures the
catalog's layers and nothing else: the writes word for word, the reads but for the columns each
selects (the floor reads only what its body sends back)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from tortoise import Tortoise

from bench import baseline
from catalog.db import tortoise_config
from catalog.products import statements
from tests.support.api import test_settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", autouse=True)
def _orm() -> Iterator[None]:
    """The models registered for PostgreSQL (the foreign key column exists from then on); nothing connects."""
    asyncio.run(Tortoise.init(config=tortoise_config(test_settings("postgres://bench@127.0.0.1:9/none"))))
    yield
    asyncio.run(Tortoise.close_connections())


def _without_columns(sql: str) -> str:
    return re.sub(r"^SELECT .+? FROM products p ", "SELECT ... FROM products p ", sql)


@pytest.mark.parametrize(
    ("floor", "catalog"),
    [
        pytest.param(baseline.INSERT_PRODUCT, lambda: statements.insert_product("postgres")[0], id="create"),
        pytest.param(baseline.ADD_STOCK, lambda: statements.add_stock("postgres", taking=False), id="stock"),
        pytest.param(baseline.INSERT_MOVEMENT, lambda: statements.insert_movement("postgres"), id="ledger-row"),
    ],
)
def test_floor_writes_are_the_catalogs(floor, catalog):
    assert floor == catalog()


@pytest.mark.parametrize(
    ("floor", "catalog"),
    [
        pytest.param(baseline.POINT_READ, lambda: statements.get_by_id("postgres"), id="get"),
        pytest.param(
            baseline.FIRST_PAGE, lambda: statements.page("postgres", ("category",), "name", False, False), id="list"
        ),
        pytest.param(
            baseline.PAGE_AFTER, lambda: statements.page("postgres", ("category",), "name", False, True), id="list-deep"
        ),
    ],
)
def test_floor_reads_are_the_catalogs_but_for_columns(floor, catalog):
    assert _without_columns(floor) == _without_columns(catalog())
    assert _without_columns(floor) != floor
