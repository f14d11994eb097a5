"""What every schema shares: request bodies (unknown fields refused, no type coercion, no nulls in
patches), query parameters, cursor pages, response shapes and the field types they have in common."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator
from tortoise.fields import CharField
from tortoise.models import Model

# Descriptions are TEXT columns, so the limit is the API's: long enough for a product page.
DESCRIPTION_MAX_LENGTH = 5000
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH)]
# Responses write timestamps as Python's isoformat (`+00:00`, not pydantic's `Z`), as they always have.
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def name_field(model: type[Model]) -> Any:
    """A display name: at least one character, at most what the model's `name` column holds, so a
    longer one is a 422 naming the field rather than a database error."""
    column = cast(CharField, model._meta.fields_map["name"])
    return Field(min_length=1, max_length=column.max_length)


# JSON Schema for "no NUL character", added to every text member without a pattern of its own.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _text_without_nul(schema: dict[str, Any]) -> None:
    for member in schema.get("properties", {}).values():
        for variant in [member, *member.get("anyOf", [])]:
            if variant.get("type") == "string" and "pattern" not in variant and "format" not in variant:
                variant["pattern"] = NO_NUL_PATTERN


class ClientInput(BaseModel):
    """Anything a client sends. No text may hold a NUL character: PostgreSQL cannot store one in
    a text column (SQLite can), and the API answers the same on both engines."""

    model_config = ConfigDict(json_schema_extra=_text_without_nul)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain the NUL character (\\u0000)")
        return value


class Body(ClientInput):
    """A JSON request body; enums arrive as their values."""

    model_config = ConfigDict(extra="forbid", strict=True, use_enum_values=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral_number(cls, value: Any) -> Any:
        # JSON has one number type: 3.0 is the integer 3 to JSON Schema, so it is to us. No other
        # coercion: "3" stays a string and is refused where a number is due.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def _patch_schema(schema: dict[str, Any]) -> None:
    """The document says what PatchBody enforces: at least one member, none of them null."""
    _text_without_nul(schema)
    schema["minProperties"] = 1
    for member in schema.get("properties", {}).values():
        variants = [v for v in member.pop("anyOf", []) if v != {"type": "null"}]
        member.update(variants[0] if len(variants) == 1 else {"anyOf": variants} if variants else {})
        member.pop("default", None)


class PatchBody(Body):
    """A partial update: at least one field, and null never clears a field."""

    model_config = ConfigDict(json_schema_extra=_patch_schema)

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


class PageQuery(ClientInput):
    """Query parameters of a cursor-paged list (strings from the URL, converted here)."""

    model_config = ConfigDict(extra="forbid")
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=500)] | None = None


class Out(BaseModel):
    """A response body, read from an ORM row's attributes or from a dict; the document promises
    no other members (additionalProperties: false)."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")
