"""The OpenAPI document is valid 3.1, documents exactly the routes the app serves with the statuses
their handlers' docstrings list, and the docs page loads only assets this server hosts (responses
against the document: test_openapi_responses.py)."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from catalog.observability.tracing import route_template

pytestmark = pytest.mark.usefixtures("settings")
_NOT_IN_API = {"/livez", "/readyz", "/metrics", "/openapi.json", "/docs", "/problems/{slug}"}


@pytest.fixture
def database_url(tmp_path):
    """These tests never touch the database; one SQLite file is enough."""
    return f"sqlite://{tmp_path}/unused.sqlite3"


async def test_openapi_is_valid_3_1(client) -> None:
    _, response = await client.get("/openapi.json")

    assert response.status == 200
    validate(response.json)
    assert response.json["openapi"].startswith("3.1")


async def test_openapi_documents_every_route(app, client) -> None:
    _, response = await client.get("/openapi.json")
    documented = {(path, method.upper()) for path, ops in response.json["paths"].items() for method in ops}

    served = {
        (route_template(route.path).rstrip("/") or "/", method)
        for route in app.router.routes
        for method in route.methods
        if method not in {"HEAD", "OPTIONS"} and not route.path.startswith("docs/assets")
    }
    served = {(path, method) for path, method in served if path not in _NOT_IN_API}

    assert documented == served


async def test_openapi_statuses_are_the_handlers_docstring(app, client) -> None:
    _, response = await client.get("/openapi.json")
    handlers = {(route_template(r.path), m.lower()): r.handler for r in app.router.routes for m in r.methods}

    for path, operations in response.json["paths"].items():
        for method, operation in operations.items():
            answers = (handlers[(path, method)].__doc__ or "").split("Answers ", 1)[-1]
            listed = {int(status) for status in re.findall(r"(?:^|; )(\d{3})\b", answers)}
            assert listed == {int(status) for status in operation["responses"]}, (path, method)


async def test_openapi_describes_money_as_decimal_string(client) -> None:
    _, response = await client.get("/openapi.json")
    price = response.json["components"]["schemas"]["ProductIn"]["properties"]["price"]

    assert price["type"] == "string"
    assert re.fullmatch(price["pattern"], "19.99")


async def test_docs_page_uses_only_local_assets(client) -> None:
    _, page = await client.get("/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)

    assert page.status == 200
    assert assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        _, response = await client.get(asset)
        assert response.status == 200, asset
