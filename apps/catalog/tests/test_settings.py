"""Settings: every bad value stops start-up with one line naming the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.settings import DEV_JWT_SECRET, ConfigurationError, Settings, load_settings

PG = "postgres://catalog@db.internal:5432/catalog"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"CATALOG_PORT": "http"}, "CATALOG_PORT", id="port-not-a-number"),
        pytest.param({"CATALOG_PORT": "70000"}, "CATALOG_PORT", id="port-out-of-range"),
        pytest.param({"CATALOG_WORKERS": "0"}, "CATALOG_WORKERS", id="no-workers"),
        pytest.param({"DATABASE_URL": "mysql://db/catalog"}, "DATABASE_URL", id="unknown-database"),
        pytest.param({"CATALOG_LOG_LEVEL": "LOUD"}, "CATALOG_LOG_LEVEL", id="bad-log-level"),
        pytest.param({"CATALOG_ENV": "staging"}, "CATALOG_ENV", id="unknown-env"),
        pytest.param({"CATALOG_JWT_SECRET": "short"}, "CATALOG_JWT_SECRET", id="short-secret"),
        pytest.param({"CATALOG_JWT_JWKS_URL": "ftp://idp/keys"}, "CATALOG_JWT_JWKS_URL", id="jwks-not-http"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", id="otlp-no-scheme"
        ),
        pytest.param(
            {"CATALOG_DB_POOL_MIN": "5", "CATALOG_DB_POOL_MAX": "2"}, "CATALOG_DB_POOL_MIN", id="pool-inverted"
        ),
        pytest.param(
            {"CATALOG_DB_TIMEOUT_SECONDS": "30"}, "CATALOG_DB_TIMEOUT_SECONDS", id="db-deadline-not-below-request's"
        ),
        pytest.param({"CATALOG_DB_TIMEOUT_SECONDS": "0"}, "CATALOG_DB_TIMEOUT_SECONDS", id="no-db-deadline"),
        pytest.param(
            {"CATALOG_JWT_SECRET": "x" * 40, "CATALOG_JWT_JWKS_URL": "https://idp/keys"},
            "CATALOG_JWT_SECRET",
            id="two-key-sources",
        ),
        pytest.param({"CATALOG_ENV": "production", "DATABASE_URL": "sqlite://x.db"}, "DATABASE_URL", id="prod-sqlite"),
        pytest.param({"CATALOG_ENV": "production", "DATABASE_URL": PG}, "CATALOG_JWT_JWKS_URL", id="prod-no-key"),
        pytest.param(
            {"CATALOG_ENV": "production", "DATABASE_URL": PG, "CATALOG_JWT_SECRET": DEV_JWT_SECRET},
            "CATALOG_JWT_JWKS_URL",
            id="prod-dev-secret",
        ),
        pytest.param(
            {"CATALOG_JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"},
            "CATALOG_JWT_PUBLIC_KEY_FILE",
            id="missing-key-file",
        ),
    ],
)
def test_load_settings_refuses_bad_value(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    message = str(caught.value)
    assert names in message
    assert "\n" not in message


def test_load_settings_defaults_are_dev_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CATALOG_ENV", "DATABASE_URL", "CATALOG_JWT_SECRET"):
        monkeypatch.delenv(key, raising=False)

    settings = load_settings()

    assert settings.env == "development"
    assert settings.database_url.startswith("sqlite://")
    assert settings.hs256_secret == DEV_JWT_SECRET


def test_load_settings_accepts_production_with_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", PG)
    monkeypatch.setenv("CATALOG_JWT_JWKS_URL", "https://idp.internal/.well-known/jwks.json")

    settings = load_settings()

    assert settings.is_production
    assert settings.hs256_secret is None


def test_every_setting_is_documented() -> None:
    readme = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()

    for name, field in Settings.model_fields.items():
        variable = field.validation_alias or f"CATALOG_{name.upper()}"
        assert f"`{variable}`" in readme, f"docs/configuration.md's table lacks {variable}"
