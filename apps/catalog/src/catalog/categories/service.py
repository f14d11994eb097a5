"""Category operations. No HTTP here: errors are CatalogError subclasses."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from catalog.categories.models import Category
from catalog.categories.schemas import CategoryIn, CategoryPatch
from catalog.errors import CategoryConflict, CategoryInUse, CategoryNotFound
from catalog.products.models import Product


async def list_categories() -> list[Category]:
    return await Category.all().order_by("slug")


async def get_category(slug: str) -> Category:
    category = await Category.get_or_none(slug=slug)
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
    updated = await Category.filter(slug=slug).update(**changes, updated_at=datetime.now(UTC))
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
