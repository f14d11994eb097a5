"""Probes: /livez (the process answers), /readyz (the database answers and we are not draining),
/metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw
from tortoise import connections

from catalog.errors import DatabaseUnavailable, Draining
from catalog.problems import DATABASE_DOWN_ERRORS

READY_CHECK_TIMEOUT_SECONDS = 2.0


async def livez(request: Request) -> HTTPResponse:
    """200 while the event loop runs; checks no dependency, so a database outage never restarts pods."""
    return json({"status": "ok"})


async def readyz(request: Request) -> HTTPResponse:
    """200 when the database answers; 503 problem+json while draining or when it does not."""
    if request.app.ctx.draining:
        raise Draining("Shutting down; not taking new traffic")
    try:
        await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), READY_CHECK_TIMEOUT_SECONDS)
    except DATABASE_DOWN_ERRORS as exc:
        raise DatabaseUnavailable(f"Database check failed: {type(exc).__name__}") from None
    return json({"status": "ok", "checks": {"database": "ok"}})


async def metrics(request: Request) -> HTTPResponse:
    """Prometheus exposition of every worker's metrics."""
    body, content_type = request.app.ctx.metrics.exposition()
    return raw(body, content_type=content_type)


def blueprint() -> Blueprint:
    """The probe routes; a new Blueprint per app."""
    bp = Blueprint("health")
    bp.add_route(livez, "/livez", methods=["GET"])
    bp.add_route(readyz, "/readyz", methods=["GET"])
    bp.add_route(metrics, "/metrics", methods=["GET"])
    return bp
