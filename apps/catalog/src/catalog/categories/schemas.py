"""Category request bodies (In / Patch) and the response shape (Out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from catalog.schemas import Body, PatchBody

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
Name = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=2000)]


class CategoryIn(Body):
    slug: Slug
    name: Name
    description: Description = ""


class CategoryPatch(PatchBody):
    name: Name | None = None
    description: Description | None = None


class CategoryOut(BaseModel):
    slug: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class CategoryPage(BaseModel):
    items: list[CategoryOut]
