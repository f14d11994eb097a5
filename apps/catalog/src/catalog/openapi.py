"""The OpenAPI 3.1 document of the routes an app serves, built from their declarations
(catalog.operations) and the pydantic models those name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from sanic import Sanic

from catalog import __version__
from catalog.auth import required_scope
from catalog.categories.schemas import Slug
from catalog.errors import NotFound
from catalog.operations import Operation, declared_operations
from catalog.problems import PROBLEM_JSON, Problem, problem_type

# What each response header means, for the document.
RESPONSE_HEADERS = {
    "ETag": "The version read or written; send it back in If-Match (writes) or If-None-Match (reads).",
    "Location": "The path of the created resource.",
    "Idempotent-Replayed": "`true` when this is the stored response to an earlier request with the same key.",
    "WWW-Authenticate": "The Bearer challenge (RFC 6750), with the error and the scope needed.",
    "Retry-After": "Seconds to wait before retrying.",
}
_REF_TEMPLATE = "#/components/schemas/{model}"
# Sanic path parameter types -> their schema.
_PATH_PARAMETERS = {"uuid": {"type": "string", "format": "uuid"}, "slug": TypeAdapter(Slug).json_schema()}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF_TEMPLATE.format(model=model.__name__)}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent, never null: drop pydantic's `anyOf [..., null]`."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        schema = {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **variants[0]}
    return schema


def _headers(names: Iterable[str], required: bool = True) -> dict[str, Any]:
    return {
        name: {"description": RESPONSE_HEADERS[name], "required": required, "schema": {"type": "string"}}
        for name in names
    }


def _responses(declared: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": HTTPStatus(declared.ok).phrase}
    if declared.out is not None:
        ok["content"] = {"application/json": {"schema": _ref(declared.out)}}
    for header in declared.sends:
        ok.setdefault("headers", {}).update(_headers([header.name], header.required))
    responses = {str(declared.ok): ok}
    for status in declared.successes()[1:]:
        responses[str(status)] = {"description": HTTPStatus(status).phrase, "headers": ok.get("headers", {})}
    for status, kinds in declared.errors_by_status().items():
        # Only the problem types this operation can answer with this status.
        narrowed = {
            "type": {"enum": [problem_type(kind.slug) for kind in kinds]},
            "status": {"const": status},
        }
        response: dict[str, Any] = {
            "description": "; ".join(f"{kind.slug}: {kind.title}" for kind in kinds),
            "content": {PROBLEM_JSON: {"schema": {"allOf": [_ref(Problem), {"properties": narrowed}]}}},
        }
        sent_by_all = set.intersection(*(set(kind.default_headers) for kind in kinds))
        if sent_by_all:
            response["headers"] = _headers(sorted(sent_by_all))
        responses[str(status)] = response
    return responses


def _operation(method: str, declared: Operation, path_parameters: dict[str, str]) -> dict[str, Any]:
    if path_parameters and NotFound not in declared.errors:
        # A path that does not fit the route's pattern (not a UUID, not a slug) matches no route: 404.
        declared = replace(declared, errors=(*declared.errors, NotFound))
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMETERS[kind]}
        for name, kind in path_parameters.items()
    ]
    for header in declared.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": header.schema,
            }
        )
    if declared.query is not None:
        schema = declared.query.model_json_schema(ref_template=_REF_TEMPLATE)
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": _without_null(prop)}
            for name, prop in schema["properties"].items()
        ]
    document: dict[str, Any] = {
        "summary": declared.summary,
        "parameters": parameters,
        "responses": _responses(declared),
        "security": [{"bearer": [required_scope(method)]}],
    }
    if declared.body is not None:
        document["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(declared.body)}}}
    return document


def _components(operations: list[Operation]) -> dict[str, Any]:
    models: dict[type[BaseModel], JsonSchemaMode] = {Problem: "serialization"}
    for declared in operations:
        if declared.body is not None:
            models[declared.body] = "validation"
        if declared.out is not None:
            models[declared.out] = "serialization"
    _, top = models_json_schema(list(models.items()), ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = top["$defs"]
    for query in {declared.query for declared in operations if declared.query is not None}:
        schemas.update(query.model_json_schema(ref_template=_REF_TEMPLATE).get("$defs", {}))
    return dict(sorted(schemas.items()))


def openapi_document(app: Sanic) -> dict[str, Any]:
    """The document for the routes `app` serves."""
    paths: dict[str, dict[str, Any]] = {}
    operations = []
    for path, method, declared, path_parameters in declared_operations(app):
        paths.setdefault(path, {})[method.lower()] = _operation(method, declared, path_parameters)
        operations.append(declared)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Product Catalog API",
            "version": __version__,
            "description": "Errors are RFC 9457 application/problem+json with field pointers.",
        },
        "paths": paths,
        "components": {
            "schemas": _components(operations),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
