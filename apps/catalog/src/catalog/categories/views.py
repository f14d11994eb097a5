"""HTTP handlers for /v1/categories: parse, call the service, shape the response."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from catalog.categories import service
from catalog.categories.schemas import CategoryIn, CategoryPatch
from catalog.http import parse_body


async def list_categories(request: Request) -> HTTPResponse:
    """All categories by slug. 200."""
    categories = await service.list_categories()
    return json({"items": [service.category_out(c) for c in categories]})


async def create_category(request: Request) -> HTTPResponse:
    """201 + Location; 409 category-conflict; 400/415/422 for a bad body."""
    category = await service.create_category(parse_body(request, CategoryIn))
    location = f"/v1/categories/{category.slug}"
    return json(service.category_out(category), status=201, headers={"Location": location})


async def get_category(request: Request, slug: str) -> HTTPResponse:
    """200; 404 category-not-found."""
    return json(service.category_out(await service.get_category(slug)))


async def update_category(request: Request, slug: str) -> HTTPResponse:
    """200; 404; 422 for a bad body."""
    patch = parse_body(request, CategoryPatch, read_only={"slug": "cannot be changed; create a new category"})
    return json(service.category_out(await service.update_category(slug, patch)))


async def delete_category(request: Request, slug: str) -> HTTPResponse:
    """204; 404; 409 category-in-use while products belong to it."""
    await service.delete_category(slug)
    return empty()


def blueprint() -> Blueprint:
    """The routes, one per line; a new Blueprint per app (tests build many apps)."""
    bp = Blueprint("categories", url_prefix="/v1/categories")
    bp.add_route(list_categories, "/", methods=["GET"])
    bp.add_route(create_category, "/", methods=["POST"])
    bp.add_route(get_category, "/<slug:slug>", methods=["GET"])
    bp.add_route(update_category, "/<slug:slug>", methods=["PATCH"])
    bp.add_route(delete_category, "/<slug:slug>", methods=["DELETE"])
    return bp
