"""Bearer JWT verification (RFC 8725) and the scope each HTTP method needs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
from sanic import Request

from catalog.errors import BEARER_CHALLENGE, InsufficientScope, Unauthenticated
from catalog.settings import Settings

READ_SCOPE = "catalog:read"
WRITE_SCOPE = "catalog:write"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# One fixed list per key type: a token can never pick its own algorithm (RFC 8725 §3.1).
HMAC_ALGORITHMS = ["HS256"]
ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# Verified tokens are remembered per worker, so a client's next request skips the signature and
# claim checks (`make bench`: 7% of a GET's CPU). An entry is used only before the token's `exp`
# (the leeway is never granted from the cache) and for at most CACHE_SECONDS, about as long as
# PyJWKClient keeps a key set; at most CACHE_ENTRIES tokens are held.
CACHE_ENTRIES = 1024
CACHE_SECONDS = 300.0

log = logging.getLogger("catalog.auth")


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]


class TokenVerifier:
    """Verifies tokens against exactly one key source: an HS256 secret, a PEM key, or a JWKS URL."""

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._static_key: Any = None
        self._algorithms: list[str] = []
        self._jwks: jwt.PyJWKClient | None = None
        # exact token -> (principal, time until which it may be served from here)
        self._verified: dict[str, tuple[Principal, float]] = {}
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        elif settings.jwt_public_key_file:
            pem = settings.jwt_public_key_file.read_bytes()
            self._static_key, self._algorithms = _load_public_key(pem)
        else:
            self._static_key, self._algorithms = settings.hs256_secret, HMAC_ALGORITHMS

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                return cached[0]
            del self._verified[token]
        principal, expires_at = await self._verify_uncached(token)
        now = time.time()
        if expires_at > now:  # a token accepted only thanks to the leeway is verified every time
            self._remember(token, principal, min(expires_at, now + CACHE_SECONDS))
        return principal

    def _remember(self, token: str, principal: Principal, until: float) -> None:
        if len(self._verified) >= CACHE_ENTRIES:
            now = time.time()
            for stale in [t for t, (_, valid_until) in self._verified.items() if valid_until <= now]:
                del self._verified[stale]
            while len(self._verified) >= CACHE_ENTRIES:
                del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (principal, until)

    async def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        """The principal and the token's `exp`; Unauthenticated for any invalid token."""
        try:
            key, algorithms = await self._key_for(token)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_iat": True},
            )
        except jwt.PyJWTError as exc:
            raise _invalid_token(str(exc)) from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise _invalid_token("sub must be a non-empty string")
        # RFC 7519 §2: a NumericDate is a JSON number; PyJWT also takes a numeric string.
        for name in ("exp", "iat", "nbf"):
            if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], int | float)):
                raise _invalid_token(f"{name} must be a JSON number")
        return Principal(subject=claims["sub"], scopes=frozenset(_scopes(claims))), float(claims["exp"])

    async def _key_for(self, token: str) -> tuple[Any, list[str]]:
        if self._jwks is None:
            return self._static_key, self._algorithms
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ASYMMETRIC_ALGORITHMS:
            raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
        # PyJWKClient fetches over blocking HTTP on a cache miss: keep that off the event loop.
        signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        if signing_key.algorithm_name != header["alg"]:
            raise jwt.InvalidAlgorithmError("The token's alg does not match its key")
        return signing_key.key, [signing_key.algorithm_name]


def _load_public_key(pem: bytes) -> tuple[Any, list[str]]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if isinstance(key, rsa.RSAPublicKey):
        return key, ["RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return key, ["ES256"]
    raise ValueError("CATALOG_JWT_PUBLIC_KEY_FILE must hold an RSA or P-256 EC public key")


def _invalid_token(reason: str) -> Unauthenticated:
    """401 invalid_token. Why the token failed goes to the log, not to the client: the body and
    challenge are the same for every bad token, so they teach a forger nothing."""
    log.info("token refused: %s", reason)
    return Unauthenticated("Invalid token", headers={"WWW-Authenticate": _challenge("invalid_token")})


def _scopes(claims: dict[str, Any]) -> set[str]:
    """Granted scopes from `scope` (RFC 8693: space-separated) and `scp` (how several identity
    providers send them: a list, or a space-separated string)."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(item for item in value if isinstance(item, str))
    return granted


def _challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    parts = [BEARER_CHALLENGE]
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def required_scope(method: str) -> str:
    return READ_SCOPE if method in _READ_METHODS else WRITE_SCOPE


async def authenticate(request: Request) -> None:
    """Blueprint middleware for /v1: a valid bearer token with the method's scope."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send Authorization: Bearer <token>")  # the bare challenge
    principal = await request.app.ctx.verifier.verify(token.strip())
    request.ctx.subject = principal.subject
    scope = required_scope(request.method)
    if scope not in principal.scopes:
        raise InsufficientScope(
            f"This request needs the {scope} scope",
            headers={"WWW-Authenticate": _challenge("insufficient_scope", scope=scope)},
            required_scope=scope,
        )


def issue_dev_token(
    settings: Settings,
    *,
    subject: str = "dev-user",
    scopes: str = f"{READ_SCOPE} {WRITE_SCOPE}",
    ttl_seconds: int = 3600,
) -> str:
    """A token signed with the HS256 secret; refused in production (no shared secret there)."""
    secret = settings.hs256_secret
    if settings.is_production or secret is None:
        raise PermissionError("dev tokens are only issued with an HS256 secret outside production")
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "scope": scopes,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
