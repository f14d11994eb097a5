"""Signing keys for tests that verify asymmetric tokens: RSA keys by name, their PEM public keys,
and a JWKS document served on loopback as an identity provider serves it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
    """The URL of a JWKS document holding `key_name`'s public key, served from a thread on 127.0.0.1."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key(key_name).public_key(), as_dict=True)
    document = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
