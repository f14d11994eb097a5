"""Request and response helpers the views share: JSON bodies in, pydantic models out, ETags and
query parameters."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from sanic import Request
from sanic.response import HTTPResponse

from catalog.errors import (
    InvalidParameter,
    MalformedJson,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
    ValidationFailed,
)
from catalog.operations import Header
from catalog.problems import validation_errors

Model = TypeVar("Model", bound=BaseModel)
SERVER_OWNED_FIELDS = ("id", "version", "created_at", "updated_at")
IF_MATCH = Header(
    "If-Match",
    "The ETag of the version you read, or `*` for whichever is current.",
    required=True,
    errors=(PreconditionRequired, PreconditionFailed),
    schema={"type": "string", "minLength": 1},
)
IF_NONE_MATCH = Header("If-None-Match", "ETags you hold; 304 when one is current.", answers=(304,))


def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 for another media type, 400 for bad JSON, 422 for a non-object."""
    if len(request.body) > request.app.config.REQUEST_MAX_SIZE:
        # Sanic's own server refuses these before reading them; under an ASGI server it does not.
        raise PayloadTooLarge("The body exceeds the request size limit")
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"Got {media_type or 'no Content-Type'}; send Content-Type: application/json")
    try:
        data = json.loads(request.body or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"Invalid JSON: {exc}") from None
    except RecursionError:
        raise MalformedJson("The JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValidationFailed(errors=[{"pointer": "", "detail": "must be a JSON object"}])
    return data


def parse_body(request: Request, model: type[Model], *, read_only: dict[str, str] | None = None) -> Model:
    """Validate the body against `model`; server-owned and read-only fields get their own message."""
    data = read_json_object(request)
    refused = {name: "is set by the server; leave it out" for name in SERVER_OWNED_FIELDS}
    refused.update(read_only or {})
    errors = [{"pointer": f"/{name}", "detail": why} for name, why in refused.items() if name in data]
    rest = {k: v for k, v in data.items() if k not in refused}
    if errors and not rest:  # only refused fields: "send at least one field" would add nothing
        raise ValidationFailed(errors=errors)
    try:
        parsed = model.model_validate(rest)
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    if errors:
        raise ValidationFailed(errors=errors)
    return parsed


def parse_query(request: Request, model: type[Model]) -> Model:
    """Query parameters (single-valued) validated by `model`; 400 naming each bad parameter."""
    # Blank values too: `?q=` is a q that is too short (400), not a missing one.
    raw = {name: values[-1] for name, values in request.get_args(keep_blank_values=True).items()}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [{"parameter": e["pointer"].lstrip("/"), "detail": e["detail"]} for e in validation_errors(exc)]
        raise InvalidParameter(errors=errors) from None


def etag(version: int) -> str:
    return f'"v{version}"'


def _listed_tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


# What etag() writes, and nothing else: If-Match uses the strong comparison (RFC 9110 §13.1.1), so
# a weak tag (W/"v1") or another spelling of the number ("v01") never matches. Versions fit INT.
_VERSION_TAG = re.compile(r'"v(0|[1-9][0-9]{0,9})"')
_MAX_VERSION = 2**31 - 1


def required_versions(request: Request) -> frozenset[int] | None:
    """The versions an If-Match names, any of which may be current (None for `*`): 428 when it is
    missing, 412 when none can match."""
    header = request.headers.get(IF_MATCH.name)
    if not header:
        raise PreconditionRequired("Send If-Match with the ETag from your last GET")
    if header.strip() == "*":
        return None
    matches = (_VERSION_TAG.fullmatch(tag.strip()) for tag in header.split(","))
    versions = frozenset(int(m.group(1)) for m in matches if m and int(m.group(1)) <= _MAX_VERSION)
    if not versions:
        raise PreconditionFailed("If-Match names no current version of this resource")
    return versions


def json_response(
    body: BaseModel | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """`body` serialised by its model, or a document already in JSON's types, by pydantic's compiled
    serializer straight to bytes."""
    data = body.__pydantic_serializer__.to_json(body) if isinstance(body, BaseModel) else to_json(body)
    return HTTPResponse(data, status=status, headers=headers, content_type="application/json")


def with_etag(
    request: Request, body: BaseModel, version: int, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """A JSON response with its ETag; 304 when If-None-Match already names it."""
    tag = etag(version)
    if_none_match = request.headers.get(IF_NONE_MATCH.name)
    if status == 200 and if_none_match and (if_none_match.strip() == "*" or tag in _listed_tags(if_none_match)):
        return HTTPResponse(status=304, headers={"ETag": tag})
    return json_response(body, status=status, headers={"ETag": tag, **(headers or {})})
