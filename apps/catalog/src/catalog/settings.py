"""Configuration from environment variables, validated once at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Obviously dev-only: refused when CATALOG_ENV=production.
DEV_JWT_SECRET = "dev-only-insecure-secret-do-not-use-in-production"  # noqa: S105  # nosec B105
DEV_DATABASE_URL = "sqlite://var/catalog.sqlite3"

_DB_SCHEMES = ("sqlite://", "postgres://", "postgresql://")


class Settings(BaseSettings):
    """Every knob of the service; env var = CATALOG_<FIELD> unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    database_url: str = Field(default=DEV_DATABASE_URL, validation_alias="DATABASE_URL")
    db_pool_min: int = Field(default=1, ge=1, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)

    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "catalog-dev"
    jwt_audience: str = "catalog-api"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Prometheus multiprocess directory; set by `catalog serve` when workers > 1.
    metrics_dir: Path | None = None
    request_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Each wait on the database: connecting, taking a pooled connection, one statement. Shorter than
    # the request timeout, so a database that stops answering is a 503, not a request left hanging.
    db_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # SIGTERM: how long in-flight requests may take before the worker exits.
    graceful_shutdown_seconds: float = Field(default=20.0, ge=0, le=300)
    # SIGTERM: how long /readyz answers 503 (while still serving) before the listener closes.
    drain_seconds: float = Field(default=0.0, ge=0, le=60)
    cors_origins: str = ""
    service_name: str = Field(default="catalog", validation_alias="OTEL_SERVICE_NAME")
    otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(_DB_SCHEMES):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return value

    @field_validator("jwt_jwks_url", "otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _safe_for_environment(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("CATALOG_DB_POOL_MIN must not exceed CATALOG_DB_POOL_MAX")
        if self.db_timeout_seconds >= self.request_timeout_seconds:
            raise ValueError("CATALOG_DB_TIMEOUT_SECONDS must be shorter than CATALOG_REQUEST_TIMEOUT_SECONDS")
        keys = [k for k in (self.jwt_secret, self.jwt_public_key_file, self.jwt_jwks_url) if k]
        if len(keys) > 1:
            # RFC 8725 §3.1: one key type, so HS* and RS* are never accepted together.
            raise ValueError("set exactly one of CATALOG_JWT_SECRET, CATALOG_JWT_PUBLIC_KEY_FILE, CATALOG_JWT_JWKS_URL")
        if self.env == "production":
            if self.database_url.startswith("sqlite://"):
                raise ValueError("DATABASE_URL must point at PostgreSQL when CATALOG_ENV=production")
            if not (self.jwt_public_key_file or self.jwt_jwks_url):
                raise ValueError(
                    "CATALOG_ENV=production needs CATALOG_JWT_JWKS_URL or CATALOG_JWT_PUBLIC_KEY_FILE "
                    "(the shared dev secret is refused)"
                )
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < 32:
            raise ValueError("CATALOG_JWT_SECRET must be at least 32 bytes (RFC 7518 §3.2)")
        if self.jwt_public_key_file is not None and not self.jwt_public_key_file.is_file():
            raise ValueError(f"CATALOG_JWT_PUBLIC_KEY_FILE: no file at {self.jwt_public_key_file}")
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def hs256_secret(self) -> str | None:
        """The HMAC secret in use: the explicit one, or the dev default outside production."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.jwt_public_key_file or self.jwt_jwks_url or self.is_production:
            return None
        return DEV_JWT_SECRET


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message names the variable and the fix."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (plus overrides), or ConfigurationError with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = _ENV_NAMES.get(field, f"CATALOG_{field.upper()}") if field else ""
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}: {message}" if variable else message)
    return "invalid configuration: " + "; ".join(problems)


_ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "service_name": "OTEL_SERVICE_NAME",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
}
