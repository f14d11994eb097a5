"""Idempotency-Key on POST /v1/products: the same key and body replay the first response; the same
key with another body is refused. Keys are scoped to the token subject."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from catalog.errors import BadRequest, IdempotencyKeyReused, SkuConflict
from catalog.products.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# How long a key is remembered; a retry after that creates a new product.
RETENTION = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as the IETF draft's examples use


class Replay:
    def __init__(self, status: int, body: dict[str, Any], location: str) -> None:
        self.status, self.body, self.location = status, body, location


def body_fingerprint(body: dict[str, Any]) -> str:
    """Same JSON value, same fingerprint: key order and white space do not matter."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BadRequest(f"{HEADER} must be 1-200 visible ASCII characters")
    return key


async def find_replay(subject: str, key: str, fingerprint: str) -> Replay | None:
    record = await IdempotencyRecord.get_or_none(subject=subject, key=key)
    if record is None:
        return None
    if record.created_at < datetime.now(UTC) - RETENTION:
        await record.delete()
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(f"{HEADER} {key!r} was first used with a different body; use a new key")
    return Replay(record.status, record.body, record.location)


async def run_once(
    subject: str, key: str, fingerprint: str, create: Callable[[], Awaitable[tuple[int, dict[str, Any], str]]]
) -> Replay:
    """Run `create` and store its response in the same transaction. If a concurrent request with
    the same key won the race, our work is rolled back and theirs is replayed."""
    try:
        async with in_transaction():
            status, body, location = await create()
            await IdempotencyRecord.create(
                subject=subject, key=key, request_hash=fingerprint, status=status, body=body, location=location
            )
            return Replay(status, body, location)
    # The winner's product holds our SKU too: create_product reports that as SkuConflict.
    except (IntegrityError, SkuConflict):
        replay = await find_replay(subject, key, fingerprint)
        if replay is None:
            raise
        return replay
