"""/openapi.json and a Swagger UI page served from the installed package (no CDN: clusters may be offline)."""

from __future__ import annotations

from importlib import resources

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json
from swagger_ui_bundle import swagger_ui_path

from catalog.openapi import openapi_document

_PAGE = resources.files("catalog").joinpath("docs.html").read_text()


async def openapi(request: Request) -> HTTPResponse:
    """The OpenAPI 3.1 document of this app's routes, built on first request. 200."""
    ctx = request.app.ctx
    if getattr(ctx, "openapi", None) is None:
        ctx.openapi = openapi_document(request.app)
    return json(ctx.openapi)


async def docs(request: Request) -> HTTPResponse:
    """Interactive API docs. 200."""
    return html(_PAGE)


def blueprint() -> Blueprint:
    """The docs routes; a new Blueprint per app."""
    bp = Blueprint("docs")
    bp.static("/docs/assets", str(swagger_ui_path), name="swagger_assets")
    bp.add_route(openapi, "/openapi.json", methods=["GET"])
    bp.add_route(docs, "/docs", methods=["GET"])
    return bp
