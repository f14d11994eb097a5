"""Base classes for request bodies: unknown fields refused, no type coercion, no nulls in patches."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PatchBody(Body):
    """A partial update: at least one field, and null never clears a field."""

    @model_validator(mode="before")
    @classmethod
    def _something_to_change(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(cls.model_fields))
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value
