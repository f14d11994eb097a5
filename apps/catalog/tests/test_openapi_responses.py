"""Real responses against the served OpenAPI document: for every documented operation, one request
per status and problem type the document declares; each answer must have that status, the
documented content type and required headers, and a body valid against the documented schema."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator, oas31_format_checker

from catalog.observability.db_spans import TracedStatements
from tests.support.api import PROBLEM_JSON, served
from tests.support.tokens import make_token

UNKNOWN = {"product_id": "00000000-0000-4000-8000-000000000000", "slug": "no-such-category"}
EMPTY_CATEGORY = "<the seed's empty category>"
BOTH_SCOPES = "catalog:read catalog:write"
_names = itertools.count()


@dataclass
class Seed:
    """Made for each call, so no call sees another's changes: a category holding one product (with
    some stock), and a category holding none."""

    slug: str
    empty: str
    product: dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request and the answer the document must describe. Fields left as they are send the
    operation's valid request (see VALID)."""

    status: int
    problem: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Callable[[Seed], Any] | None = None
    content: bytes | None = None
    scope: str | None = BOTH_SCOPES
    database_down: bool = False
    sent_before: Callable[[Seed], Any] | None = None  # the same request with this body goes first


def product_body(seed: Seed, **changes: Any) -> dict[str, Any]:
    return {"sku": f"NEW-{seed.slug}", "name": "Floor lamp", "category": seed.slug, "price": "49.90",
            "currency": "EUR", **changes}  # fmt: skip


def replacement(seed: Seed) -> dict[str, Any]:
    keys = ("sku", "name", "description", "category", "price", "currency", "status")
    return {**{k: seed.product[k] for k in keys}, "name": "Replaced lamp"}


# The valid request of each operation: its body and headers.
VALID: dict[tuple[str, str], tuple[Callable[[Seed], Any] | None, Callable[[Seed], dict[str, str]]]] = {
    ("/v1/categories", "GET"): (None, lambda seed: {}),
    ("/v1/categories", "POST"): (lambda seed: {"slug": f"new-{next(_names)}", "name": "New"}, lambda seed: {}),
    ("/v1/categories/{slug}", "GET"): (None, lambda seed: {}),
    ("/v1/categories/{slug}", "PATCH"): (lambda seed: {"name": "Renamed"}, lambda seed: {}),
    ("/v1/categories/{slug}", "DELETE"): (None, lambda seed: {}),
    ("/v1/products", "GET"): (None, lambda seed: {}),
    ("/v1/products", "POST"): (product_body, lambda seed: {}),
    ("/v1/products/{product_id}", "GET"): (None, lambda seed: {}),
    ("/v1/products/{product_id}", "PUT"): (replacement, lambda seed: {"If-Match": f'"v{seed.product["version"]}"'}),
    ("/v1/products/{product_id}", "PATCH"): (
        lambda seed: {"name": "Renamed lamp"},
        lambda seed: {"If-Match": f'"v{seed.product["version"]}"'},
    ),
    ("/v1/products/{product_id}", "DELETE"): (None, lambda seed: {"If-Match": f'"v{seed.product["version"]}"'}),
    ("/v1/products/{product_id}/stock", "POST"): (lambda seed: {"delta": 2, "reason": "delivery"}, lambda seed: {}),
    ("/v1/products/{product_id}/stock-movements", "GET"): (None, lambda seed: {}),
}
# Every operation answers these; a body or a query adds its own.
EVERY_OPERATION = [
    Call(401, "unauthenticated", scope=None),
    Call(403, "insufficient-scope", scope="catalog:none"),
    Call(503, "database-unavailable", database_down=True),
]
BODY = [
    Call(400, "malformed-json", content=b'{"name": '),
    Call(413, "payload-too-large", content=b'{"name": "' + b"x" * 1024 * 1024 + b'"}'),
    Call(415, "unsupported-media-type", headers={"Content-Type": "text/plain"}),
    Call(422, "validation-error", body=lambda seed: {"bogus": 1}),
]
QUERY = [Call(400, "invalid-parameter", query="limit=0"), Call(400, "invalid-cursor", query="cursor=%25%25")]
IF_MATCH = [Call(412, "precondition-failed", headers={"If-Match": '"v999"'}), Call(428, "precondition-required",
            headers={"If-Match": ""})]  # fmt: skip
PRODUCT_MISSING = Call(404, "product-not-found", params={"product_id": UNKNOWN["product_id"]})
CATEGORY_MISSING = Call(404, "category-not-found", params={"slug": UNKNOWN["slug"]})
TAKEN_SKU = Call(409, "sku-conflict", body=lambda seed: product_body(seed, sku=seed.product["sku"]))

CALLS: dict[tuple[str, str], list[Call]] = {
    ("/v1/categories", "GET"): [Call(200)],
    ("/v1/categories", "POST"): [
        Call(201),
        *BODY,
        Call(409, "category-conflict", body=lambda seed: {"slug": seed.slug, "name": "Again"}),
    ],
    ("/v1/categories/{slug}", "GET"): [Call(200), CATEGORY_MISSING],
    ("/v1/categories/{slug}", "PATCH"): [Call(200), *BODY, CATEGORY_MISSING],
    ("/v1/categories/{slug}", "DELETE"): [
        Call(204, params={"slug": EMPTY_CATEGORY}),
        CATEGORY_MISSING,
        Call(409, "category-in-use"),
    ],
    ("/v1/products", "GET"): [Call(200, query="limit=1"), *QUERY],
    ("/v1/products", "POST"): [
        Call(201),
        Call(201, headers={"Idempotency-Key": "order-{slug}"}, sent_before=product_body),
        *BODY,
        TAKEN_SKU,
        Call(400, "bad-request", headers={"Idempotency-Key": "two words"}),
        Call(
            422,
            "idempotency-key-reused",
            headers={"Idempotency-Key": "order-{slug}"},
            sent_before=lambda seed: product_body(seed, name="Another lamp"),
        ),
    ],
    ("/v1/products/{product_id}", "GET"): [Call(200), Call(304, headers={"If-None-Match": "*"}), PRODUCT_MISSING],
    ("/v1/products/{product_id}", "PUT"): [
        Call(200),
        *BODY,
        *IF_MATCH,
        PRODUCT_MISSING,
        Call(409, "sku-conflict", body=lambda seed: {**replacement(seed), "sku": "TAKEN-1"}),
    ],
    ("/v1/products/{product_id}", "PATCH"): [
        Call(200),
        *BODY,
        *IF_MATCH,
        PRODUCT_MISSING,
        Call(409, "sku-conflict", body=lambda seed: {"sku": "TAKEN-1"}),
    ],
    ("/v1/products/{product_id}", "DELETE"): [Call(204), *IF_MATCH, PRODUCT_MISSING],
    ("/v1/products/{product_id}/stock", "POST"): [
        Call(201),
        *BODY,
        PRODUCT_MISSING,
        Call(409, "insufficient-stock", body=lambda seed: {"delta": -1000, "reason": "sale"}),
    ],
    ("/v1/products/{product_id}/stock-movements", "GET"): [Call(200), *QUERY, PRODUCT_MISSING],
}
# A path segment that fits no route (not a UUID, not a slug) matches nothing: the generic 404.
NO_ROUTE = {"product_id": "not-a-uuid", "slug": "Not_A_Slug"}
for (path, _), calls in CALLS.items():
    calls += EVERY_OPERATION
    calls += [Call(404, "not-found", params={name: value}) for name, value in NO_ROUTE.items() if f"{{{name}}}" in path]


@pytest.fixture
async def document(client) -> dict[str, Any]:
    _, response = await client.get("/openapi.json")
    assert response.status == 200
    return response.json


def declared(document: dict[str, Any]) -> set[tuple[str, str, int, str | None]]:
    """(path, method, status, problem type or None) for everything the document says can happen."""
    found = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                problem = response.get("content", {}).get(PROBLEM_JSON)
                if problem is None:
                    found.add((path, method.upper(), int(status), None))
                    continue
                for problem_type in problem["schema"]["allOf"][1]["properties"]["type"]["enum"]:
                    found.add((path, method.upper(), int(status), problem_type.removeprefix("/problems/")))
    return found


async def test_openapi_calls_cover_everything_declared(document):
    called = {(path, method, call.status, call.problem) for (path, method), calls in CALLS.items() for call in calls}

    assert called == declared(document)


async def make_seed(request: Callable[..., Any], headers: dict[str, str]) -> Seed:
    n = next(_names)
    slug, empty = f"seeded-{n}", f"empty-{n}"
    for category in (slug, empty):
        response = await request("POST", "/v1/categories", json={"slug": category, "name": "Seeded"}, headers=headers)
        assert response.status_code == 201, response.text
    body = {"sku": f"SEED-{n}", "name": "Seed lamp", "category": slug, "price": "19.99", "currency": "EUR", "stock": 5}
    response = await request("POST", "/v1/products", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return Seed(slug, empty, response.json())


async def send(request: Callable[..., Any], path: str, method: str, call: Call, seed: Seed, monkeypatch: Any) -> Any:
    valid_body, valid_headers = VALID[(path, method)]
    values = {"product_id": seed.product["id"], "slug": seed.slug, **call.params}
    values = {k: seed.empty if v == EMPTY_CATEGORY else v for k, v in values.items()}
    url = path.format(**values) + (f"?{call.query}" if call.query else "")
    headers = {**valid_headers(seed), **{k: v.format(slug=seed.slug) for k, v in call.headers.items()}}
    if call.scope is not None:
        headers["Authorization"] = f"Bearer {make_token(scope=call.scope)}"
    headers = {k: v for k, v in headers.items() if v}
    body = call.body or valid_body
    kwargs: dict[str, Any] = {"headers": headers}
    if call.content is not None or body is not None:
        kwargs["content"] = call.content if call.content is not None else json.dumps(body(seed)).encode()
        headers.setdefault("Content-Type", "application/json")
    if call.sent_before is not None:
        first = {**kwargs, "content": json.dumps(call.sent_before(seed)).encode()}
        assert (await request(method, url, **first)).status_code < 300
    if call.database_down:
        with monkeypatch.context() as patch:
            patch.setattr(TracedStatements, "_span", _refuse_connection)
            return await request(method, url, **kwargs)
    return await request(method, url, **kwargs)


def _refuse_connection(self: Any, query: str) -> Any:
    raise ConnectionRefusedError(111, "Connection refused")


def mismatches(document: dict[str, Any], path: str, method: str, call: Call, response: Any) -> list[str]:
    """How `response` differs from what the document says about this status."""
    documented = document["paths"][path][method.lower()]["responses"].get(str(response.status_code))
    if response.status_code != call.status or documented is None:
        return [f"status {response.status_code} (wanted {call.status}, documented: {documented is not None})"]
    problems = []
    for name, header in documented.get("headers", {}).items():
        if header["required"] and name not in response.headers:
            problems.append(f"no {name} header")
    content = documented.get("content")
    if content is None:
        if response.content:
            problems.append(f"a body where none is documented: {response.text[:200]}")
        return problems
    media_type = response.headers.get("content-type", "").split(";")[0]
    if media_type not in content:
        return [*problems, f"content type {media_type!r}, documented {sorted(content)}"]
    schema = {**content[media_type]["schema"], "components": document["components"]}
    validator = OAS31Validator(schema, format_checker=oas31_format_checker)
    problems += [f"body {error.json_path}: {error.message}" for error in validator.iter_errors(response.json())]
    if call.problem is not None and response.json().get("type") != f"/problems/{call.problem}":
        problems.append(f"problem type {response.json().get('type')}, wanted {call.problem}")
    return problems


@pytest.mark.parametrize(("path", "method"), [pytest.param(*key, id=" ".join(key[::-1])) for key in CALLS])
async def test_openapi_responses_match_the_document(app, client, document, monkeypatch, path, method):
    found = {}
    async with served(app, client) as request:
        seeding = {"Authorization": f"Bearer {make_token(scope=BOTH_SCOPES)}"}
        await request("POST", "/v1/categories", json={"slug": "taken", "name": "Taken"}, headers=seeding)
        taken = {"sku": "TAKEN-1", "name": "Taken", "category": "taken", "price": "1.00", "currency": "EUR"}
        await request("POST", "/v1/products", json=taken, headers=seeding)
        for call in CALLS[(path, method)]:
            seed = await make_seed(request, seeding)
            response = await send(request, path, method, call, seed, monkeypatch)
            if problems := mismatches(document, path, method, call, response):
                found[f"{call.status} {call.problem or ''}".strip()] = problems

    assert found == {}
