"""Product, its stock ledger and the idempotency records of product creation."""

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class Product(Model):
    id = fields.UUIDField(primary_key=True)
    sku = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    category: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "catalog.Category", related_name="products", on_delete=fields.RESTRICT
    )
    price_units = fields.BigIntField()  # price x catalog.money.PRICE_SCALE
    currency = fields.CharField(max_length=3)
    stock = fields.IntField(default=0)
    status = fields.CharEnumField(ProductStatus, max_length=16, default=ProductStatus.DRAFT)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    category_id: int

    class Meta:
        table = "products"
        app = "catalog"
        # One index per keyset sort order; id breaks ties so every page boundary is exact. A category's
        # list in the default order has its own, so its pages cost the same at any table size.
        indexes = (("name", "id"), ("price_units", "id"), ("created_at", "id"), ("category_id", "name", "id"))


class StockMovement(Model):
    id = fields.BigIntField(primary_key=True)
    product: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "catalog.Product", related_name="movements", on_delete=fields.CASCADE
    )
    delta = fields.IntField()
    reason = fields.CharField(max_length=200)
    resulting_stock = fields.IntField()
    actor = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    product_id: str

    class Meta:
        table = "stock_movements"
        app = "catalog"
        indexes = (("product_id", "id"),)


class IdempotencyRecord(Model):
    """The first response to a POST carrying an Idempotency-Key, per token subject."""

    id = fields.BigIntField(primary_key=True)
    subject = fields.CharField(max_length=200)
    key = fields.CharField(max_length=200)
    request_hash = fields.CharField(max_length=64)
    status = fields.IntField()
    body: Any = fields.JSONField()
    location = fields.CharField(max_length=300, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_records"
        app = "catalog"
        unique_together = (("subject", "key"),)
