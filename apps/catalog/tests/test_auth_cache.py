"""The verified-token cache: it may skip work, never widen what is accepted (expiry, leeway, a
changed token), and stays bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable

import pytest

from catalog import auth
from catalog.auth import TokenVerifier
from catalog.errors import Unauthenticated
from tests.support.api import test_settings
from tests.support.tokens import claims, make_token


def verifier(**settings: object) -> TokenVerifier:
    return TokenVerifier(test_settings("sqlite://unused.sqlite3", **settings))


def cached(tokens: TokenVerifier) -> int:
    """How many tokens the cache holds (its size is no business of the app's, only of these tests)."""
    return len(tokens._verified)


def with_payload_of(token: str, **overrides: object) -> str:
    """`token`'s header and signature around another payload."""
    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims(**overrides)).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


async def test_auth_cache_refuses_a_cached_token_once_it_expires(caplog: pytest.LogCaptureFixture):
    tokens = verifier(jwt_leeway_seconds=0)
    expires = int(time.time()) + 2
    token = make_token(exp=expires)

    assert (await tokens.verify(token)).subject == "alice"
    assert cached(tokens) == 1
    await asyncio.sleep(expires - time.time() + 0.05)

    caplog.set_level(logging.INFO, logger="catalog.auth")
    with pytest.raises(Unauthenticated, match=r"^Invalid token$"):
        await tokens.verify(token)
    # The client is told only "Invalid token"; why is in the log.
    assert [r.getMessage() for r in caplog.records] == ["token refused: Signature has expired"]


async def test_auth_cache_does_not_keep_a_token_accepted_only_by_the_leeway():
    tokens = verifier(jwt_leeway_seconds=30)
    token = make_token(exp=int(time.time()) - 5)

    assert (await tokens.verify(token)).subject == "alice"

    assert cached(tokens) == 0


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(lambda good: with_payload_of(good, sub="mallory"), id="payload-swapped"),
        pytest.param(lambda good: good[:-2] + ("AA" if not good.endswith("AA") else "BB"), id="signature-changed"),
        pytest.param(lambda good: make_token(aud="another-api"), id="other-audience"),
        pytest.param(lambda good: make_token(exp=int(time.time()) - 120), id="expired"),
    ],
)
async def test_auth_cache_refuses_bad_tokens_after_a_good_one(bad_token: Callable[[str], str]):
    tokens = verifier()
    good = make_token()
    await tokens.verify(good)

    with pytest.raises(Unauthenticated):
        await tokens.verify(bad_token(good))
    assert cached(tokens) == 1  # only the good one


async def test_auth_cache_answers_concurrent_requests_each_with_its_own_principal():
    tokens = verifier()
    subjects = [f"user-{n}" for n in range(40)]
    issued = [make_token(sub=s, scope="catalog:read" if n % 2 else "catalog:write") for n, s in enumerate(subjects)]

    # Every token twice, interleaved: the second round is served from the cache.
    principals = await asyncio.gather(*(tokens.verify(t) for t in issued + issued))

    assert [p.subject for p in principals] == subjects + subjects
    assert [p.scopes for p in principals[:40]] == [p.scopes for p in principals[40:]]
    assert principals[1].scopes == {"catalog:read"}
    assert principals[0].scopes == {"catalog:write"}


async def test_auth_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(auth, "CACHE_ENTRIES", 8)
    tokens = verifier()
    issued = [make_token(sub=f"user-{n}") for n in range(20)]

    for token in issued:
        await tokens.verify(token)

    assert cached(tokens) == 8
    assert (await tokens.verify(issued[0])).subject == "user-0"  # evicted, verified again
