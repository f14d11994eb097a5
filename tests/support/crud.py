"""The authenticated CRUD round trip every served catalog must pass, whatever serves it (a
container, pods behind a Service): reads refused without a token, a category and a product
created, the product changed under If-Match, read back and deleted."""

from __future__ import annotations

import uuid

import httpx


def crud_round_trip(client: httpx.Client, token: str) -> str:
    """The round trip against `client`'s base URL with `token`; returns the product's URL (gone by then).
    Names are fresh each call, so one database serves any number of round trips."""
    suffix = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/products").status_code == 401
    created = client.post("/v1/categories", json={"slug": f"lamps-{suffix}", "name": "Lamps"}, headers=headers)
    assert created.status_code == 201, created.text
    body = {"sku": f"LAMP-{suffix}", "name": "Desk lamp", "category": f"lamps-{suffix}", "price": "19.99",
            "currency": "EUR", "stock": 3}  # fmt: skip
    created = client.post("/v1/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    changed = client.patch(location, json={"price": "24.50"}, headers={**headers, "If-Match": created.headers["ETag"]})
    assert changed.status_code == 200, changed.text
    assert client.get(location, headers=headers).json()["price"] == "24.50"
    deleted = client.delete(location, headers={**headers, "If-Match": changed.headers["ETag"]})
    assert deleted.status_code == 204, deleted.text
    assert client.get(location, headers=headers).status_code == 404
    return location
