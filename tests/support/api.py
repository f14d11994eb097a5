"""The service in-process: its test settings, problem+json checks, and an app started once for a
run of requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from catalog.settings import Settings
from tests.support.tokens import AUDIENCE, ISSUER, TEST_SECRET

PROBLEM_JSON = "application/problem+json"


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


test_settings.__test__ = False  # imported into test modules: not a test itself


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
