"""Category request bodies (In / Patch) and the response shapes (Out / Page)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from catalog.categories.models import Category
from catalog.schemas import Body, Description, Out, PatchBody, Timestamp, name_field

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Slug = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        description="Lowercase words joined by single hyphens, e.g. `desk-lamps`.",
    ),
]
Name = Annotated[str, name_field(Category)]


class CategoryIn(Body):
    slug: Slug
    name: Name
    description: Description = ""


class CategoryPatch(PatchBody):
    name: Name | None = None
    description: Description | None = None


class CategoryOut(Out):
    slug: str
    name: str
    description: str
    created_at: Timestamp
    updated_at: Timestamp


class CategoryPage(Out):
    items: list[CategoryOut]
