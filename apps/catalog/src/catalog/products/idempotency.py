"""Idempotency-Key on POST /v1/products: the same key and body replay the first response; the same
key with another body is refused. Keys are scoped to the token subject."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sanic import Request
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from catalog.errors import BadRequest, IdempotencyKeyReused, SkuConflict
from catalog.http import read_json_object
from catalog.operations import Header
from catalog.products.models import IdempotencyRecord
from catalog.products.schemas import ProductOut

_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # visible ASCII, as the IETF draft's examples use
KEY = Header(
    "Idempotency-Key",
    "Up to 200 visible ASCII characters; a retry with the same key and body replays the first 201.",
    errors=(BadRequest, IdempotencyKeyReused),
    schema={"type": "string", "pattern": _KEY_PATTERN, "minLength": 1, "maxLength": 200},
)
REPLAYED = "Idempotent-Replayed"
# How long a key is remembered; a retry after that creates a new product.
RETENTION = timedelta(hours=24)
_KEY = re.compile(_KEY_PATTERN.removeprefix("^").removesuffix("$"))


@dataclass(frozen=True)
class Created:
    """A creation's response; `replayed` is None when the request carried no key."""

    status: int
    body: ProductOut
    location: str
    replayed: bool | None = None


def body_fingerprint(body: dict[str, Any]) -> str:
    """Same JSON value, same fingerprint: key order and white space do not matter."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BadRequest(f"{KEY.name} must be 1-200 visible ASCII characters")
    return key


async def create_once(request: Request, create: Callable[[], Awaitable[Created]]) -> Created:
    """`create`, unless the request's key (with the same body) already created something: then
    that first response again."""
    key = request.headers.get(KEY.name)
    if key is None:
        return await create()
    subject = request.ctx.subject
    fingerprint = body_fingerprint(read_json_object(request))
    replay = await find_replay(subject, check_key(key), fingerprint)
    if replay is not None:
        return replay
    return await run_once(subject, key, fingerprint, create)


async def find_replay(subject: str, key: str, fingerprint: str) -> Created | None:
    record = await IdempotencyRecord.get_or_none(subject=subject, key=key)
    if record is None:
        return None
    if record.created_at < datetime.now(UTC) - RETENTION:
        await record.delete()
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(f"{KEY.name} {key!r} was first used with a different body; use a new key")
    return Created(record.status, ProductOut.model_validate(record.body), record.location, replayed=True)


async def run_once(subject: str, key: str, fingerprint: str, create: Callable[[], Awaitable[Created]]) -> Created:
    """Run `create` and store its response in the same transaction. If a concurrent request with
    the same key won the race, our work is rolled back and theirs is replayed."""
    try:
        async with in_transaction():
            created = await create()
            await IdempotencyRecord.create(
                subject=subject,
                key=key,
                request_hash=fingerprint,
                status=created.status,
                body=created.body.model_dump(mode="json"),
                location=created.location,
            )
            return replace(created, replayed=False)
    # The winner's product holds our SKU too: create_product reports that as SkuConflict.
    except (IntegrityError, SkuConflict):
        replay = await find_replay(subject, key, fingerprint)
        if replay is None:
            raise
        return replay
