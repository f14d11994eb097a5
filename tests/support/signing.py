"""Signing keys for tests that verify asymmetric tokens: RSA keys by name, their PEM public keys,
and a JWKS document served on loopback as an identity provider serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.loopback import LoopbackServer

JWKS_KID = "catalog-test-key-1"


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per name for the whole run (key generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(name: str) -> bytes:
    return (
        rsa_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def rs256(key_name: str, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(claims, rsa_key(key_name), algorithm="RS256", headers={"kid": kid} if kid else None)


@contextmanager
def jwks_server(key_name: str, kid: str = JWKS_KID) -> Iterator[str]:
    """The URL of a JWKS document holding `key_name`'s public key, served on 127.0.0.1."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key(key_name).public_key(), as_dict=True)
    document = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()
    with LoopbackServer(lambda *request: (200, "application/json", document)) as server:
        yield f"{server.url}/.well-known/jwks.json"
