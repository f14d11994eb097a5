"""Product request bodies (In / Replace / Patch / StockAdjustment), list parameters and shapes out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from catalog.categories.schemas import Slug
from catalog.money import MINOR_UNITS, PRICE_PATTERN, check_price, from_units
from catalog.products.models import Product, ProductStatus
from catalog.schemas import Body, Description, Out, PageQuery, PatchBody, Timestamp, name_field

MAX_STOCK = 1_000_000_000
Sku = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Letters, digits, `.`, `_` and `-`; unique.",
    ),
]
Name = Annotated[str, name_field(Product)]


def _decimal_string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "19.99", not a JSON number')
    return value


PriceText = Annotated[
    str,
    Field(
        pattern=PRICE_PATTERN, examples=["19.99"], description="Decimal string; at most the currency's minor digits."
    ),
]
# In a body: a JSON number is refused by name rather than read as a float.
Price = Annotated[PriceText, BeforeValidator(_decimal_string)]


def _known_currency(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError("must be an ISO 4217 code this API prices in: " + ", ".join(sorted(MINOR_UNITS)))
    return value


Currency = Annotated[str, AfterValidator(_known_currency), Field(json_schema_extra={"enum": sorted(MINOR_UNITS)})]
Status = Annotated[ProductStatus, Field(strict=False)]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK)]


class _PricedBody:
    """Cross-field rule: a price may not have more decimals than its currency (declared first)."""

    @field_validator("price", check_fields=False)
    @classmethod
    def _price_fits_currency(cls, price: str | None, info: ValidationInfo) -> str | None:
        currency = info.data.get("currency")
        if price is not None and currency is not None and (problem := check_price(price, currency)):
            raise ValueError(problem)
        return price


class ProductIn(_PricedBody, Body):
    sku: Sku
    name: Name
    description: Description = ""
    category: Slug
    currency: Currency
    price: Price
    stock: Stock = 0
    status: Status = ProductStatus.DRAFT


class ProductReplace(_PricedBody, Body):
    """PUT: every writable field (stock is changed only through /stock)."""

    sku: Sku
    name: Name
    description: Description
    category: Slug
    currency: Currency
    price: Price
    status: Status


class ProductPatch(_PricedBody, PatchBody):
    sku: Sku | None = None
    name: Name | None = None
    description: Description | None = None
    category: Slug | None = None
    currency: Currency | None = None
    price: Price | None = None
    status: Status | None = None


class StockAdjustment(Body):
    delta: Annotated[int, Field(ge=-1_000_000, le=1_000_000, json_schema_extra={"not": {"const": 0}})]
    reason: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("delta")
    @classmethod
    def _nonzero(cls, delta: int) -> int:
        # A field validator, so the problem's pointer names /delta rather than the whole body.
        if delta == 0:
            raise ValueError("must not be 0")
        return delta


SortKey = Literal["name", "-name", "price", "-price", "created_at", "-created_at"]


class ProductQuery(PageQuery):
    """GET /v1/products query parameters: filters and sort, then the page."""

    category: Slug | None = None
    min_price: Annotated[str, Field(pattern=PRICE_PATTERN)] | None = None
    max_price: Annotated[str, Field(pattern=PRICE_PATTERN)] | None = None
    status: ProductStatus | None = None
    q: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    sort: SortKey = "name"


class ProductOut(Out):
    id: UUID
    sku: str
    name: str
    description: str
    category: str
    price: PriceText
    currency: str
    stock: int
    status: ProductStatus
    version: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, product: Product, category: str) -> ProductOut:
        """The API's view of a model instance: the category by slug, the price in the currency's
        minor digits."""
        return cls.model_validate(
            {
                "id": product.id,
                "sku": product.sku,
                "name": product.name,
                "description": product.description,
                "category": category,
                "price": from_units(product.price_units, product.currency),
                "currency": product.currency,
                "stock": product.stock,
                "status": product.status,
                "version": product.version,
                "created_at": product.created_at,
                "updated_at": product.updated_at,
            }
        )

    @staticmethod
    def document(row: Mapping[str, Any]) -> dict[str, Any]:
        """A page statement's row (its category as `category_slug`) as this model writes it, without
        the model: validating 20 rows the database just typed and serialising them once more cost a
        third of what a page costs the service. test_listing holds every item equal to its GET."""
        return {
            "id": str(row["id"]),
            "sku": row["sku"],
            "name": row["name"],
            "description": row["description"],
            "category": row["category_slug"],
            "price": from_units(row["price_units"], row["currency"]),
            "currency": row["currency"],
            "stock": row["stock"],
            "status": row["status"],
            "version": row["version"],
            "created_at": _timestamp(row["created_at"]),
            "updated_at": _timestamp(row["updated_at"]),
        }


def _timestamp(value: datetime | str) -> str:
    """As Timestamp writes it. asyncpg returns a datetime; SQLite the text Tortoise stored there,
    with a space between date and time."""
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).isoformat()


class ProductPage(Out):
    items: list[ProductOut]
    next_cursor: str | None


class StockMovementOut(Out):
    id: int
    delta: int
    reason: str
    resulting_stock: int
    actor: str
    created_at: Timestamp


class StockMovementPage(Out):
    items: list[StockMovementOut]
    next_cursor: str | None
