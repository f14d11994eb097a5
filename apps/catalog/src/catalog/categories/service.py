"""Category operations. No HTTP here: errors are CatalogError subclasses."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError
from tortoise.exceptions import IntegrityError

from catalog.categories.models import Category
from catalog.categories.schemas import CategoryIn, CategoryPatch, Slug
from catalog.errors import CategoryConflict, CategoryInUse, CategoryNotFound
from catalog.products.models import Product

_SLUG = TypeAdapter(Slug)


def _named(slug: str) -> str:
    """A path segment that is no valid slug (too long, wrong characters) names no category: 404,
    without asking the database, whose column would refuse it."""
    try:
        return _SLUG.validate_python(slug)
    except ValidationError:
        raise CategoryNotFound("No category with this slug") from None


async def list_categories() -> list[Category]:
    return await Category.all().order_by("slug")


async def get_category(slug: str) -> Category:
    category = await Category.get_or_none(slug=_named(slug))
    if category is None:
        raise CategoryNotFound(f"No category {slug!r}")
    return category


async def create_category(data: CategoryIn) -> Category:
    try:
        return await Category.create(**data.model_dump())
    except IntegrityError:
        raise CategoryConflict(f"Category {data.slug!r} already exists") from None


async def update_category(slug: str, patch: CategoryPatch) -> Category:
    changes = patch.model_dump(exclude_unset=True)
    updated = await Category.filter(slug=_named(slug)).update(**changes, updated_at=datetime.now(UTC))
    if not updated:
        raise CategoryNotFound(f"No category {slug!r}")
    return await get_category(slug)


async def delete_category(slug: str) -> None:
    category = await get_category(slug)
    count = await Product.filter(category_id=category.id).count()
    if count:
        raise CategoryInUse(f"Category {slug!r} still has {count} products; move or delete them first", products=count)
    try:
        await category.delete()
    except IntegrityError:  # a product arrived between the count and the delete
        raise CategoryInUse(f"Category {slug!r} still has products") from None
