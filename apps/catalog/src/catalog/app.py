"""The app factory: the one place that wires settings, routes, middleware, listeners and errors."""

from __future__ import annotations

import asyncio
import logging
import os

from sanic import Blueprint, Sanic
from sanic_ext import Extend

from catalog import auth, db, docs, health, problems
from catalog.categories import views as category_views
from catalog.observability.logging import configure_logging
from catalog.observability.metrics import Metrics, forget_worker
from catalog.observability.requests import install_request_observers
from catalog.observability.tracing import configure_tracing, shutdown_tracing
from catalog.products import views as product_views
from catalog.settings import Settings, load_settings

log = logging.getLogger("catalog.app")


def create_app(settings: Settings | None = None, name: str = "catalog") -> Sanic:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Sanic(name, configure_logging=False)
    app.config.update(
        REQUEST_MAX_SIZE=settings.request_max_bytes,
        REQUEST_TIMEOUT=settings.request_timeout_seconds,
        RESPONSE_TIMEOUT=settings.request_timeout_seconds,
        GRACEFUL_SHUTDOWN_TIMEOUT=settings.graceful_shutdown_seconds,
        ACCESS_LOG=False,
        MOTD=False,
        NOISY_EXCEPTIONS=False,
        FALLBACK_ERROR_FORMAT="json",
        CORS_ORIGINS=settings.cors_origins,
        OAS=False,  # sanic-ext's generated schema misdescribes pydantic models; see catalog.openapi
        HEALTH=False,
    )
    app.ctx.settings = settings
    app.ctx.metrics = Metrics()
    app.ctx.verifier = auth.TokenVerifier(settings)
    app.ctx.draining = False
    Extend(app)

    configure_tracing(settings.service_name, settings.otlp_endpoint)
    install_request_observers(app)
    problems.register_error_handlers(app)
    v1 = Blueprint.group(category_views.blueprint(), product_views.blueprint())
    v1.middleware("request")(auth.authenticate)
    app.blueprint(health.blueprint())
    app.blueprint(docs.blueprint())
    app.blueprint(v1)
    db.register_database(app, settings)
    _register_shutdown(app, settings)
    return app


def _register_shutdown(app: Sanic, settings: Settings) -> None:
    @app.before_server_stop
    async def drain(app: Sanic) -> None:
        # The listener still accepts here: /readyz answers 503 for drain_seconds so load balancers
        # stop sending traffic, then Sanic closes it and waits for in-flight requests.
        app.ctx.draining = True
        log.info("draining", extra={"drain_seconds": settings.drain_seconds})
        await asyncio.sleep(settings.drain_seconds)

    @app.after_server_stop
    async def flush(app: Sanic) -> None:
        shutdown_tracing()
        forget_worker(os.getpid())
        log.info("stopped")
