"""`catalog serve | migrate | seed | token`: the service's command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from functools import partial
from pathlib import Path

from catalog.settings import ConfigurationError, Settings, load_settings


def serve(settings: Settings) -> None:
    # prometheus-client picks its storage when first imported, so the multiprocess directory is
    # prepared before anything imports the app (spawned workers inherit the environment).
    from catalog.observability.metrics import prepare_multiprocess_dir

    metrics_dir = settings.metrics_dir or Path(tempfile.gettempdir()) / f"catalog-metrics-{settings.port}"
    prepare_multiprocess_dir(metrics_dir)

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from catalog.app import create_app
    from catalog.shutdown import DrainingHttpProtocol

    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        single_process=False,
        protocol=DrainingHttpProtocol,
    )
    Sanic.serve(primary=app, app_loader=loader)


async def _with_orm(settings: Settings, work: str) -> str:
    from tortoise import Tortoise

    from catalog.db import migrate, tortoise_config
    from catalog.demo import load_demo_data

    if work == "migrate":
        await migrate(settings)
        return "catalog: database schema is up to date"
    await Tortoise.init(config=tortoise_config(settings))
    try:
        created = await load_demo_data()
    finally:
        await Tortoise.close_connections()
    return f"catalog: loaded {created} demo products" if created else "catalog: demo data already present"


def token(settings: Settings, subject: str, scopes: str, ttl: int) -> None:
    from catalog.auth import issue_dev_token

    try:
        print(issue_dev_token(settings, subject=subject, scopes=scopes, ttl_seconds=ttl))
    except PermissionError as exc:
        raise ConfigurationError(f"{exc}; production tokens come from your identity provider") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="catalog", description="Product Catalog API")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve HTTP (settings from CATALOG_* and DATABASE_URL)")
    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("seed", help="load demo data into an empty database")
    token_parser = commands.add_parser("token", help="print a development JWT (not in production)")
    token_parser.add_argument("--subject", default="dev-user")
    token_parser.add_argument("--scopes", default="catalog:read catalog:write")
    token_parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            serve(settings)
        elif args.command == "token":
            token(settings, args.subject, args.scopes, args.ttl)
        else:
            return _run_with_orm(settings, args.command)
    except ConfigurationError as exc:
        print(f"catalog: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_with_orm(settings: Settings, work: str) -> int:
    """migrate/seed; a database that is unavailable or does not answer within its deadline is one
    line on stderr and exit 1 (an init container's log, read by a human), not a traceback."""
    from catalog.db_engines.faults import is_database_down

    try:
        print(asyncio.run(_with_orm(settings, work)))
    except Exception as exc:
        if not is_database_down(exc):
            raise
        print(
            f"catalog: {work}: the database is unavailable or did not answer within "
            f"CATALOG_DB_TIMEOUT_SECONDS={settings.db_timeout_seconds:g} ({_describe(exc)})",
            file=sys.stderr,
        )
        return 1
    return 0


def _describe(exc: BaseException) -> str:
    """The error and what it was raised from, on one line."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 3:
        parts.append(f"{type(current).__name__}: {current}".removesuffix(": ").replace("\n", " "))
        current = current.__cause__
    return " <- ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
