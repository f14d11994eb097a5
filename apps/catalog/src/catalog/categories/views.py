"""HTTP handlers for /v1/categories: parse, call the service, answer through the response models."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty

from catalog.categories import service
from catalog.categories.schemas import CategoryIn, CategoryOut, CategoryPage, CategoryPatch
from catalog.errors import CategoryConflict, CategoryInUse, CategoryNotFound
from catalog.http import json_response, parse_body
from catalog.operations import ResponseHeader, operation


@operation(200, out=CategoryPage)
async def list_categories(request: Request) -> HTTPResponse:
    """List categories by slug."""
    categories = await service.list_categories()
    return json_response(CategoryPage(items=[CategoryOut.model_validate(c) for c in categories]))


@operation(201, out=CategoryOut, body=CategoryIn, sends=(ResponseHeader("Location"),), errors=(CategoryConflict,))
async def create_category(request: Request) -> HTTPResponse:
    """Create a category."""
    category = await service.create_category(parse_body(request, CategoryIn))
    location = f"/v1/categories/{category.slug}"
    return json_response(CategoryOut.model_validate(category), status=201, headers={"Location": location})


@operation(200, out=CategoryOut, errors=(CategoryNotFound,))
async def get_category(request: Request, slug: str) -> HTTPResponse:
    """Get a category."""
    return json_response(CategoryOut.model_validate(await service.get_category(slug)))


@operation(200, out=CategoryOut, body=CategoryPatch, errors=(CategoryNotFound,))
async def update_category(request: Request, slug: str) -> HTTPResponse:
    """Update a category's name or description (the slug is its identity)."""
    patch = parse_body(request, CategoryPatch, read_only={"slug": "cannot be changed; create a new category"})
    return json_response(CategoryOut.model_validate(await service.update_category(slug, patch)))


@operation(204, errors=(CategoryNotFound, CategoryInUse))
async def delete_category(request: Request, slug: str) -> HTTPResponse:
    """Delete a category without products."""
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
