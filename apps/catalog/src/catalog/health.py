"""Probes: /livez (the process answers), /readyz (the database answers and we are not draining),
/metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw
from tortoise import connections

from catalog.db_engines.faults import is_database_down
from catalog.errors import DatabaseUnavailable, Draining

READY_CHECK_TIMEOUT_SECONDS = 2.0


async def livez(request: Request) -> HTTPResponse:
    """200 while the event loop runs; checks no dependency, so a database outage never restarts pods."""
    return json({"status": "ok"})


async def readyz(request: Request) -> HTTPResponse:
    """200 when the database answers; 503 problem+json while draining or when it does not."""
    if request.app.ctx.draining:
        raise Draining("Shutting down; not taking new traffic")
    # Not asyncio.wait_for: after its deadline it waits for the cancelled query to finish, and a
    # frozen database never lets it. The probe answers at its deadline; the check ends on its own.
    check = asyncio.ensure_future(connections.get("default").execute_query("SELECT 1"))
    done, _ = await asyncio.wait({check}, timeout=READY_CHECK_TIMEOUT_SECONDS)
    if not done:
        check.cancel()
        check.add_done_callback(_consume)
        failure: BaseException | None = TimeoutError()
    else:
        failure = check.exception()
    if failure is not None:
        if not is_database_down(failure):
            raise failure
        raise DatabaseUnavailable(f"Database check failed: {type(failure).__name__}")
    return json({"status": "ok", "checks": {"database": "ok"}})


def _consume(task: asyncio.Future[object]) -> None:
    """Retrieve an abandoned check's outcome, so asyncio never logs it as never retrieved."""
    if not task.cancelled():
        task.exception()


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
