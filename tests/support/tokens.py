"""Bearer tokens the test apps and servers accept: HS256 with the tests' secret, issuer and audience."""

from __future__ import annotations

import time
from typing import Any

import jwt

TEST_SECRET = "test-secret-of-at-least-thirty-two-bytes!"
ISSUER, AUDIENCE = "catalog-test", "catalog-api"


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
