"""Tortoise configuration from settings, and the ORM's start/stop around the server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sanic import Sanic
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url

from catalog.settings import Settings

MODEL_MODULES = ["catalog.categories.models", "catalog.products.models"]
# Our engines are Tortoise's own clients with a span around every statement.
_TRACED_ENGINES = {
    "tortoise.backends.sqlite": "catalog.db_engines.sqlite",
    "tortoise.backends.asyncpg": "catalog.db_engines.postgres",
}


async def _keep_session(connection: Any) -> None:
    """Pool reset hook: nothing to undo (see tortoise_config)."""


def tortoise_config(settings: Settings) -> dict[str, Any]:
    url = settings.database_url.replace("postgresql://", "postgres://", 1)
    connection = expand_db_url(url)
    credentials = connection["credentials"]
    if connection["engine"] == "tortoise.backends.sqlite":
        Path(credentials["file_path"]).parent.mkdir(parents=True, exist_ok=True)
        # Several workers share one file: wait for a write lock instead of failing at once, but no
        # longer than any other wait on the database (then 503, see db_engines.faults).
        credentials.setdefault("busy_timeout", int(settings.db_timeout_seconds * 1000))
    else:
        credentials.setdefault("minsize", settings.db_pool_min)
        credentials.setdefault("maxsize", settings.db_pool_max)
        # Fail a request fast (and answer 503) rather than hang while the database is away or frozen:
        # connecting, taking a pooled connection and every statement each have this deadline.
        for deadline in ("timeout", "acquire_timeout", "command_timeout"):
            credentials.setdefault(deadline, settings.db_timeout_seconds)
        # asyncpg's default reset sends RESET ALL, UNLISTEN, CLOSE ALL and pg_advisory_unlock_all
        # on every release, one more round trip per statement; the service keeps no session state
        # (asyncpg still rolls back a transaction left open). `make bench` measured the difference.
        credentials.setdefault("reset", _keep_session)
    connection["engine"] = _TRACED_ENGINES[connection["engine"]]
    return {
        "connections": {"default": connection},
        "apps": {
            "catalog": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "catalog.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def register_database(app: Sanic, settings: Settings) -> None:
    """Open the ORM in each worker before it serves (catalog.shutdown closes it). Never creates
    tables. Opening connects to nothing: the first query does, within the database deadline."""
    config = tortoise_config(settings)

    @app.before_server_start
    async def open_database(app: Sanic) -> None:
        # The global fallback lets every request task find the connections Tortoise.init made.
        await Tortoise.init(config=config, _enable_global_fallback=True)


async def close_database(deadline_seconds: float) -> bool:
    """Close the pools within the deadline (a frozen database must not hold the exit up); False if
    that did not finish."""
    try:
        await asyncio.wait_for(Tortoise.close_connections(), deadline_seconds)
    except TimeoutError:
        return False
    return True


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (the only way tables are created or changed)."""
    from tortoise.migrations.api import migrate as run_migrations

    try:
        await run_migrations(config=tortoise_config(settings))
    finally:
        await Tortoise.close_connections()


# Where `tortoise makemigrations` keeps the scratch database it diffs the models against.
MAKEMIGRATIONS_DATABASE_URL = "sqlite://var/makemigrations.sqlite3"


def __getattr__(name: str) -> Any:
    """`catalog.db.MIGRATIONS_CONFIG`: the config a developer's `tortoise makemigrations -c
    catalog.db.MIGRATIONS_CONFIG` reads. Built on that first access, never at import: importing
    this module must neither read the environment (a production one refuses SQLite) nor create
    `var/` in whatever directory the process runs in."""
    if name == "MIGRATIONS_CONFIG":
        return tortoise_config(developer_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def developer_settings() -> Settings:
    """Settings for writing migrations: the scratch SQLite file whatever the environment says."""
    return Settings(
        env="development",
        database_url=MAKEMIGRATIONS_DATABASE_URL,
        jwt_secret=None,
        jwt_public_key_file=None,
        jwt_jwks_url=None,
    )
