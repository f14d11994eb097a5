"""Bearer JWT on every /v1 route: RFC 6750 challenges, RFC 8725 algorithm pinning, required claims,
scopes, a PEM public key and a JWKS endpoint as key sources."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from catalog.app import create_app
from tests.support import signing
from tests.support.api import assert_problem, test_settings
from tests.support.signing import JWKS_KID, jwks_server, public_pem
from tests.support.tokens import auth, claims, make_token

CHALLENGE = 'Bearer realm="catalog"'
_apps = itertools.count()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWS built without PyJWT, which refuses to make the unsigned and PEM-as-HMAC-secret tokens."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    return signing_input + "." + b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def rs256(key_name: str = "issuer", kid: str | None = None, **overrides: Any) -> str:
    return signing.rs256(key_name, claims(**overrides), kid)


def tampered() -> str:
    header, _, signature = make_token().split(".")
    return f"{header}.{b64url(json.dumps(claims(sub='mallory')).encode())}.{signature}"


def sample_path(path: str) -> str:
    return re.sub(r"<[^>]*:uuid>", str(uuid.uuid4()), re.sub(r"<[^>]*:slug>", "lamps", path))


def app_client(settings: Any) -> Iterator[Any]:
    """A client for an app with its own key source (the `client` fixture's app uses the HS256 secret)."""
    EXECUTOR_CACHE.clear()
    yield create_app(settings, name=f"catalog_auth_{next(_apps)}").asgi_client
    if Tortoise._inited:
        asyncio.run(Tortoise.close_connections())


def assert_unauthenticated(response: Any, error: str | None) -> None:
    assert_problem(response, 401, "unauthenticated")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(CHALLENGE)
    if error is None:
        assert challenge == CHALLENGE
    else:
        assert f'error="{error}"' in challenge


async def test_auth_every_v1_route_challenges_without_header(app, client):
    v1_routes = {
        (method, route.path) for route in app.router.routes if route.path.startswith("v1/") for method in route.methods
    }
    assert v1_routes == {
        ("GET", "v1/categories"),
        ("POST", "v1/categories"),
        ("GET", "v1/categories/<slug:slug>"),
        ("PATCH", "v1/categories/<slug:slug>"),
        ("DELETE", "v1/categories/<slug:slug>"),
        ("GET", "v1/products"),
        ("POST", "v1/products"),
        ("GET", "v1/products/<product_id:uuid>"),
        ("PUT", "v1/products/<product_id:uuid>"),
        ("PATCH", "v1/products/<product_id:uuid>"),
        ("DELETE", "v1/products/<product_id:uuid>"),
        ("POST", "v1/products/<product_id:uuid>/stock"),
        ("GET", "v1/products/<product_id:uuid>/stock-movements"),
    }

    for method, path in sorted(v1_routes):
        _, response = await client.request(method, "/" + sample_path(path), json={})

        assert_unauthenticated(response, None)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic YWxpY2U6c2VjcmV0", id="basic-scheme"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Token abc.def.ghi", id="other-scheme"),
        pytest.param(make_token(), id="no-scheme"),
    ],
)
async def test_auth_malformed_header_challenges_without_error(client, authorization):
    _, response = await client.get("/v1/products", headers={"Authorization": authorization})

    assert_unauthenticated(response, None)


async def test_auth_valid_token_lowercase_scheme_accepted(client):
    _, response = await client.get("/v1/products", headers={"Authorization": f"bearer {make_token()}"})

    assert response.status == 200, response.text


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: make_token(exp=int(time.time()) - 120), id="expired"),
        pytest.param(lambda: make_token(iat=int(time.time()) + 600), id="iat-in-future"),
        pytest.param(lambda: make_token(aud="another-api"), id="wrong-aud"),
        pytest.param(lambda: make_token(iss="someone-else"), id="wrong-iss"),
        *(
            pytest.param(lambda c=c: make_token(**{c: None}), id=f"missing-{c}")
            for c in ("exp", "iat", "iss", "aud", "sub")
        ),
        pytest.param(lambda: make_token(sub=""), id="empty-sub"),
        pytest.param(lambda: hand_signed({"alg": "none", "typ": "JWT"}, claims(), None), id="alg-none"),
        pytest.param(lambda: make_token(secret="another-secret-of-at-least-thirty-two-bytes"), id="other-secret"),
        pytest.param(tampered, id="tampered-payload"),
        pytest.param(rs256, id="rs256-against-hs256-app"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        # RFC 7519 §2: NumericDate is a JSON number.
        pytest.param(lambda: make_token(exp=str(int(time.time()) + 300)), id="exp-numeric-string"),
        pytest.param(lambda: make_token(iat=str(int(time.time()))), id="iat-numeric-string"),
        pytest.param(lambda: make_token(exp=True), id="exp-boolean"),
    ],
)
async def test_auth_bad_token_is_invalid_token(client, token: Callable[[], str]):
    _, response = await client.get("/v1/products", headers=auth(token()))

    assert_unauthenticated(response, "invalid_token")
    # The same words for every bad token: why it failed is logged, never told to the client.
    assert response.json["detail"] == "Invalid token"
    assert response.headers["WWW-Authenticate"] == f'{CHALLENGE}, error="invalid_token"'


async def test_auth_baseline_token_accepted(client):
    """The control for the table above: each bad token differs from this one in one way."""
    _, response = await client.get("/v1/products", headers=auth(make_token()))

    assert response.status == 200, response.text


@pytest.mark.parametrize(
    ("scope", "method", "status", "missing"),
    [
        pytest.param("catalog:read", "GET", 200, None, id="read-get"),
        pytest.param("catalog:read", "POST", 403, "catalog:write", id="read-post"),
        pytest.param("catalog:write", "GET", 403, "catalog:read", id="write-get"),
        pytest.param("catalog:write", "POST", 201, None, id="write-post"),
        pytest.param(None, "GET", 403, "catalog:read", id="no-scope-get"),
        pytest.param("catalog:admin", "POST", 403, "catalog:write", id="other-scope-post"),
        # Several identity providers send `scp` instead: a list, or a space-separated string.
        pytest.param({"scp": ["catalog:read"]}, "GET", 200, None, id="scp-list-get"),
        pytest.param({"scp": ["catalog:read"]}, "POST", 403, "catalog:write", id="scp-list-post"),
        pytest.param({"scp": "catalog:read catalog:write"}, "POST", 201, None, id="scp-string-post"),
        pytest.param({"scope": "catalog:read", "scp": ["catalog:write"]}, "POST", 201, None, id="scope-and-scp"),
        pytest.param({"scp": [7, {"catalog:read": 1}]}, "GET", 403, "catalog:read", id="scp-not-strings"),
    ],
)
async def test_auth_scope_decides_403(client, scope, method, status, missing):
    body = {"slug": "lamps", "name": "Lamps"} if method == "POST" else None
    granted = {"scope": None, **scope} if isinstance(scope, dict) else {"scope": scope}

    _, response = await client.request(method, "/v1/categories", json=body, headers=auth(make_token(**granted)))

    assert response.status == status, response.text
    if missing is not None:
        assert_problem(response, 403, "insufficient-scope")
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(CHALLENGE)
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{missing}"' in challenge


async def test_auth_invalid_token_without_scope_is_401_not_403(client):
    token = make_token(scope="catalog:read", exp=int(time.time()) - 120)

    _, response = await client.post("/v1/categories", json={"slug": "lamps", "name": "Lamps"}, headers=auth(token))

    assert_unauthenticated(response, "invalid_token")


async def test_auth_write_denied_creates_nothing(client):
    await client.post(
        "/v1/categories", json={"slug": "lamps", "name": "Lamps"}, headers=auth(make_token(scope="catalog:read"))
    )

    _, response = await client.get("/v1/categories", headers=auth())

    assert response.json["items"] == []


# An app whose only key is an RSA public key file ------------------------------------------------


@pytest.fixture
def pem_client(database_url: str, tmp_path: Path) -> Iterator[Any]:
    key_file = tmp_path / "issuer.pub.pem"
    key_file.write_bytes(public_pem("issuer"))
    yield from app_client(test_settings(database_url, jwt_secret=None, jwt_public_key_file=key_file))


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param(lambda: rs256("issuer"), 200, id="rs256-matching-key"),
        pytest.param(
            lambda: hand_signed({"alg": "HS256", "typ": "JWT"}, claims(), public_pem("issuer")),
            401,
            id="hs256-signed-with-public-pem",
        ),
        pytest.param(lambda: rs256("stranger"), 401, id="rs256-other-key"),
        pytest.param(make_token, 401, id="hs256-test-secret"),
        pytest.param(lambda: hand_signed({"alg": "none"}, claims(), None), 401, id="alg-none"),
        pytest.param(lambda: rs256("issuer", exp=int(time.time()) - 120), 401, id="rs256-expired"),
    ],
)
async def test_auth_public_key_app_accepts_only_rs256(pem_client, token: Callable[[], str], status: int):
    _, response = await pem_client.get("/v1/products", headers=auth(token()))

    if status == 401:
        assert_unauthenticated(response, "invalid_token")
    else:
        assert response.status == status, response.text


# An app that fetches its keys from a JWKS endpoint ----------------------------------------------


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """A JWKS document with the `issuer` public key, served on loopback."""
    with jwks_server("issuer") as url:
        yield url


@pytest.fixture
def jwks_client(database_url: str, jwks_url: str) -> Iterator[Any]:
    yield from app_client(test_settings(database_url, jwt_secret=None, jwt_jwks_url=jwks_url))


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param(lambda: rs256("issuer", kid=JWKS_KID), 200, id="rs256-known-kid"),
        pytest.param(lambda: rs256("issuer", kid="unknown-kid"), 401, id="unknown-kid"),
        pytest.param(lambda: rs256("stranger", kid=JWKS_KID), 401, id="known-kid-other-key"),
        pytest.param(
            lambda: hand_signed({"alg": "HS256", "kid": JWKS_KID}, claims(), public_pem("issuer")),
            401,
            id="hs256-signed-with-public-pem",
        ),
        pytest.param(lambda: rs256("issuer", kid=JWKS_KID, aud="another-api"), 401, id="rs256-wrong-aud"),
    ],
)
async def test_auth_jwks_app_verifies_by_kid(jwks_client, token: Callable[[], str], status: int):
    _, response = await jwks_client.get("/v1/products", headers=auth(token()))

    if status == 401:
        assert_unauthenticated(response, "invalid_token")
    else:
        assert response.status == status, response.text
