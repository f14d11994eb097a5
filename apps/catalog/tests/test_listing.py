"""GET /v1/products and the stock ledger: filters, sort orders, limits, parameter errors and keyset
pagination, including pages walked while rows are inserted and deleted around the cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.api import assert_problem, served
from tests.support.tokens import auth

Row = dict[str, Any]
# Lowercase letters only, with repeats: every collation orders them alike and `id` must break ties.
NAMES = ("cedar", "amber", "birch", "amber", "delta", "birch", "ember", "amber")
STATUSES = ("draft", "active", "archived")
DESCRIPTIONS = ("Brass finish", "100% cotton shade", "1000 threads", "", "Matte black")
SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "name": lambda row: row["name"],
    "price": lambda row: Decimal(row["price"]),
    "created_at": lambda row: datetime.fromisoformat(row["created_at"]),
}


def ordered(rows: list[Row], sort: str) -> list[str]:
    """The ids in the API's order: the sort column, then id, both in the sort's direction."""
    key = SORT_KEYS[sort.lstrip("-")]
    return [r["id"] for r in sorted(rows, key=lambda r: (key(r), r["id"]), reverse=sort.startswith("-"))]


def product_body(**fields: Any) -> Row:
    return {"category": "lamps", "currency": "EUR", "description": "", **fields}


async def create(client: Any, **fields: Any) -> Row:
    _, response = await client.post("/v1/products", json=product_body(**fields), headers=auth())
    assert response.status == 201, response.text
    return response.json


async def create_all(app: Any, client: Any, path: str, bodies: list[Row]) -> list[Row]:
    """POST each body in order through one started app (the rows' creation order matters)."""
    created = []
    async with served(app, client) as request:
        for body in bodies:
            response = await request("POST", path, json=body, headers=auth())
            assert response.status_code == 201, response.text
            created.append(response.json())
    return created


async def listing(client: Any, **params: Any) -> Any:
    _, response = await client.get(f"/v1/products?{urlencode(params)}", headers=auth())
    return response


async def walk(client: Any, path: str = "/v1/products", **params: Any) -> list[list[Row]]:
    """Every page from the first to the one without next_cursor."""
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        _, response = await client.get(f"{path}?{urlencode(query)}", headers=auth())
        assert response.status == 200, response.text
        pages.append(response.json["items"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


@pytest.fixture
async def rows(app, client) -> list[Row]:
    """16 products over two categories, three statuses, tied names and tied prices."""
    await create_all(app, client, "/v1/categories", [{"slug": s, "name": s.title()} for s in ("lamps", "desks")])
    return await create_all(
        app,
        client,
        "/v1/products",
        [
            product_body(
                sku=f"SKU_{i:02d}" if i % 4 == 0 else f"SKU-{i:02d}",
                name=NAMES[i % len(NAMES)],
                description=DESCRIPTIONS[i % len(DESCRIPTIONS)],
                category="lamps" if i % 2 else "desks",
                price=str(Decimal("7.25") * (i % 6)),
                status=STATUSES[i % len(STATUSES)],
            )
            for i in range(16)
        ],
    )


def contains(text: str) -> Callable[[Row], bool]:
    return lambda row: any(text.lower() in row[f].lower() for f in ("sku", "name", "description"))


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        pytest.param({"category": "lamps"}, lambda r: r["category"] == "lamps", id="category"),
        pytest.param({"category": "nothing"}, lambda r: False, id="unknown-category"),
        pytest.param({"status": "active"}, lambda r: r["status"] == "active", id="status"),
        pytest.param({"min_price": "14.5"}, lambda r: Decimal(r["price"]) >= Decimal("14.5"), id="min-price"),
        pytest.param({"max_price": "14.50"}, lambda r: Decimal(r["price"]) <= Decimal("14.5"), id="max-price"),
        pytest.param(
            {"min_price": "7.25", "max_price": "21.75"},
            lambda r: Decimal("7.25") <= Decimal(r["price"]) <= Decimal("21.75"),
            id="price-range",
        ),
        pytest.param({"q": "brass"}, contains("brass"), id="q-description-lowercase"),
        pytest.param({"q": "BIRCH"}, contains("birch"), id="q-name-uppercase"),
        pytest.param({"q": "sku-0"}, contains("sku-0"), id="q-sku"),
        # As wildcards, "0%" would also match SKU-0x and "1000 threads", "U_0" every SKU-0x.
        pytest.param({"q": "0%"}, contains("0%"), id="q-percent-literal"),
        pytest.param({"q": "U_0"}, contains("U_0"), id="q-underscore-literal"),
        pytest.param(
            {"category": "lamps", "status": "archived", "max_price": "30"},
            lambda r: r["category"] == "lamps" and r["status"] == "archived" and Decimal(r["price"]) <= 30,
            id="combined",
        ),
    ],
)
async def test_list_products_filters(client, rows, params, keep):
    response = await listing(client, limit=100, **params)

    assert response.status == 200, response.text
    expected = ordered([r for r in rows if keep(r)], "name")
    assert [item["id"] for item in response.json["items"]] == expected
    assert len(expected) < len(rows)  # a case that keeps every row tests nothing
    assert response.json["next_cursor"] is None


@pytest.mark.parametrize("sort", ["name", "-name", "price", "-price", "created_at", "-created_at"])
async def test_list_products_sorts_and_pages(client, rows, sort):
    """Pages of 5 over 16 rows: each page boundary falls on a different tie of name or price."""
    pages = await walk(client, sort=sort, limit=5)

    assert [item["id"] for page in pages for item in page] == ordered(rows, sort)
    assert [len(page) for page in pages] == [5, 5, 5, 1]


async def test_list_products_default_sort_is_name(client, rows):
    response = await listing(client)

    assert [item["id"] for item in response.json["items"]] == ordered(rows, "name")


async def test_list_items_read_exactly_as_get_reads_each_product(client, rows):
    """A page is built straight from the query's rows, a GET through the ORM's model: every member
    of every item must come out the same, timestamps and prices to the character."""
    listed = [item for page in await walk(client, limit=7) for item in page]
    for item in listed:
        _, response = await client.get(f"/v1/products/{item['id']}", headers=auth())
        assert response.status == 200, response.text
        assert item == response.json
    assert sorted(item["id"] for item in listed) == sorted(row["id"] for row in rows)


@pytest.fixture
async def many(app, client, category) -> list[Row]:
    """30 products whose name and price rank alike: row07 costs 7.00."""
    return await create_all(
        app,
        client,
        "/v1/products",
        [product_body(sku=f"ROW-{i:02d}", name=f"row{i:02d}", price=f"{i}.00") for i in range(30)],
    )


@pytest.mark.parametrize(
    ("limit", "size"),
    [
        pytest.param(None, 20, id="default-20"),
        pytest.param(1, 1, id="one"),
        pytest.param(100, 30, id="max-100"),
    ],
)
async def test_list_products_limit(client, many, limit, size):
    response = await listing(client, **({} if limit is None else {"limit": limit}))

    assert len(response.json["items"]) == size
    assert (response.json["next_cursor"] is None) == (size == len(many))


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        pytest.param({"limit": 101}, "limit", id="limit-over-max"),
        pytest.param({"limit": 0}, "limit", id="limit-zero"),
        pytest.param({"limit": "ten"}, "limit", id="limit-not-number"),
        pytest.param({"min_price": "abc"}, "min_price", id="min-price-text"),
        pytest.param({"max_price": "-1"}, "max_price", id="max-price-negative"),
        pytest.param({"sort": "bogus"}, "sort", id="sort-unknown"),
        pytest.param({"sort": "-bogus"}, "sort", id="sort-unknown-descending"),
        pytest.param({"status": "sold"}, "status", id="status-unknown"),
        pytest.param({"category": "Not A Slug"}, "category", id="category-not-slug"),
        pytest.param({"colour": "red"}, "colour", id="unknown-parameter"),
    ],
)
async def test_list_products_bad_parameter(client, params, parameter):
    response = await listing(client, **params)

    body = assert_problem(response, 400, "invalid-parameter")
    assert [error["parameter"] for error in body["errors"]] == [parameter]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        pytest.param("name", "%%%not-base64%%%", id="not-base64"),
        pytest.param("name", b64(b"not json"), id="not-json"),
        pytest.param("name", b64(b"[1, 2]"), id="json-array"),
        pytest.param("name", b64(json.dumps({"s": "name", "v": "x"}).encode()), id="missing-id"),
        pytest.param("name", b64(json.dumps({"s": "name", "v": "x", "id": 7}).encode()), id="id-not-string"),
        pytest.param(
            "created_at", b64(json.dumps({"s": "created_at", "v": "yesterday", "id": "x"}).encode()), id="bad-timestamp"
        ),
        pytest.param("-price", b64(json.dumps({"s": "name", "v": "x", "id": "x"}).encode()), id="other-sort"),
    ],
)
async def test_list_products_bad_cursor(client, sort, cursor):
    response = await listing(client, sort=sort, cursor=cursor)

    assert_problem(response, 400, "invalid-cursor")


async def test_list_products_cursor_bound_to_its_sort(client, many):
    first = await listing(client, sort="name", limit=5)

    response = await listing(client, sort="-price", limit=5, cursor=first.json["next_cursor"])

    assert_problem(response, 400, "invalid-cursor")


async def insert_between(client: Any, rank: dict[str, float], base: int) -> str:
    """A row ranked between `base` and `base + 1` by name and by price alike ("row07x", 7.50)."""
    row = await create(client, sku=f"NEW-{len(rank)}", name=f"row{base:02d}x", price=f"{base}.50")
    rank[row["id"]] = base + 0.5
    return str(row["id"])


@pytest.mark.parametrize("sort", ["name", "-price"])
async def test_list_products_pages_survive_changes(client, many, sort):
    """Between pages, insert a row behind the cursor and one ahead of it, and delete a row not yet
    seen: rows present throughout appear exactly once, rows inserted behind the cursor never."""
    descending = sort.startswith("-")
    rank = {row["id"]: float(i) for i, row in enumerate(many)}
    original = set(rank)
    seen: list[str] = []
    deleted: set[str] = set()
    behind: set[str] = set()
    ahead: set[str] = set()
    cursor = None
    while True:
        response = await listing(client, sort=sort, limit=5, **({"cursor": cursor} if cursor else {}))
        assert response.status == 200, response.text
        seen += [item["id"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
        at = int(rank[seen[-1]])  # the cursor's rank lies in [at, at + 1)
        farthest_first = sorted(original - deleted - set(seen), key=rank.__getitem__, reverse=not descending)
        if len(farthest_first) < 4 or (descending and at < 2):
            continue
        behind.add(await insert_between(client, rank, at + 1 if descending else at - 1))
        ahead.add(await insert_between(client, rank, at - 2 if descending else at + 2))
        _, gone = await client.delete(f"/v1/products/{farthest_first[0]}", headers=auth(**{"If-Match": "*"}))
        assert gone.status == 204
        deleted.add(farthest_first[0])

    assert len(seen) == len(set(seen)), "a row was repeated"
    assert original - deleted <= set(seen), "a row present throughout was skipped"
    assert not (deleted | behind) & set(seen)
    assert ahead <= set(seen)
    assert len(deleted) == 5  # once per page boundary while four unseen rows remain


# The stock ledger of one product ---------------------------------------------------------------


async def test_list_stock_movements_pages(client, product):
    deltas = [3, -2, 7, -1, 4, -5, 2]
    for delta in deltas:
        _, response = await client.post(
            f"/v1/products/{product['id']}/stock", json={"delta": delta, "reason": "count"}, headers=auth()
        )
        assert response.status == 201

    pages = await walk(client, f"/v1/products/{product['id']}/stock-movements", limit=3)

    movements = [m for page in pages for m in page]
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [m["delta"] for m in movements] == [product["stock"], *deltas]
    assert [m["id"] for m in movements] == sorted({m["id"] for m in movements})


@pytest.mark.parametrize(
    ("params", "slug"),
    [
        pytest.param({"limit": 101}, "invalid-parameter", id="limit-over-max"),
        pytest.param({"sort": "id"}, "invalid-parameter", id="unknown-parameter"),
        pytest.param({"cursor": "%%%"}, "invalid-cursor", id="garbage-cursor"),
        pytest.param(
            {"cursor": b64(json.dumps({"s": "name", "v": "x", "id": "x"}).encode())},
            "invalid-cursor",
            id="product-cursor",
        ),
        pytest.param(
            {"cursor": b64(json.dumps({"s": "id", "v": "7", "id": "7"}).encode())},
            "invalid-cursor",
            id="id-not-integer",
        ),
    ],
)
async def test_list_stock_movements_bad_parameter(client, product, params, slug):
    _, response = await client.get(f"/v1/products/{product['id']}/stock-movements?{urlencode(params)}", headers=auth())

    assert_problem(response, 400, slug)
