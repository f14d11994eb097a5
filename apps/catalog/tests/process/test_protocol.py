"""What only the real HTTP server enforces: the limit on the request head (Sanic reports it
with the body's exception; the client must hear 431, not 413)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.api import PROBLEM_JSON
from tests.support.server import ServerProcess

pytestmark = pytest.mark.process


@pytest.mark.parametrize(
    ("headers", "content", "status", "problem"),
    [
        pytest.param({"X-Padding": "a" * 20_000}, None, 431, "headers-too-large", id="one-huge-header"),
        pytest.param({f"X-Pad-{n}": "a" * 100 for n in range(200)}, None, 431, "headers-too-large", id="many-headers"),
    ],
)
def test_server_limits_are_problems(
    serve: Callable[..., ServerProcess], sqlite_url: str, headers, content, status: int, problem: str
) -> None:
    server = serve(sqlite_url)

    response = httpx.post(
        f"{server.url}/v1/categories",
        headers={"Content-Type": "application/json", **headers},
        content=content,
        timeout=10,
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == f"/problems/{problem}"
    assert [r for r in server.log_records() if r["level"] == "ERROR"] == []
