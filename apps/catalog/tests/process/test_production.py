"""The production configuration, started for real: `catalog migrate` then `catalog serve` with
CATALOG_ENV=production on the test PostgreSQL, once per way production takes its signing key (a
PEM public key file, a JWKS URL) — and the dev secret refused. The staging and prod Deployments
start the service exactly so."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from catalog.settings import DEV_JWT_SECRET
from tests.support.postgres import PostgresServer, admin_sql
from tests.support.server import ServerProcess, catalog_env, run_catalog
from tests.support.signing import JWKS_KID, jwks_server, public_pem, rs256
from tests.support.tokens import AUDIENCE, ISSUER, claims

pytestmark = [pytest.mark.process, pytest.mark.pg]

_databases = itertools.count()


@pytest.fixture
def empty_database(postgres: PostgresServer | str) -> str:
    """A database with no tables: `catalog migrate` must create them itself, as the hook Job does."""
    admin = postgres if isinstance(postgres, str) else postgres.url
    name = f"catalog_production_{os.getpid()}_{next(_databases)}"
    admin_sql(postgres, f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def production_env(database_url: str, tmp_path: Path, **keys: str) -> dict[str, str]:
    """What the staging and prod ConfigMaps and Secrets give the container, plus the key source."""
    return catalog_env(
        CATALOG_ENV="production",
        DATABASE_URL=database_url,
        CATALOG_JWT_ISSUER=ISSUER,
        CATALOG_JWT_AUDIENCE=AUDIENCE,
        CATALOG_LOG_LEVEL="INFO",
        CATALOG_METRICS_DIR=str(tmp_path / "metrics"),
        **keys,
    )


@pytest.fixture(params=["public-key-file", "jwks-url"])
def key_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Callable[[], str]]]:
    """(the setting that names the key, a token signed by the matching private key)."""
    if request.param == "public-key-file":
        key_file = tmp_path / "jwt-public-key.pem"
        key_file.write_bytes(public_pem("production"))
        yield {"CATALOG_JWT_PUBLIC_KEY_FILE": str(key_file)}, lambda: rs256("production", claims())
        return
    with jwks_server("production") as url:
        yield {"CATALOG_JWT_JWKS_URL": url}, lambda: rs256("production", claims(), kid=JWKS_KID)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_production_migrates_then_serves_with_its_key(
    empty_database: str, tmp_path: Path, key_source: tuple[dict[str, str], Callable[[], str]]
) -> None:
    keys, token = key_source
    env = production_env(empty_database, tmp_path, **keys)

    migrated = run_catalog("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == "catalog: database schema is up to date"
    assert migrated.stderr == ""

    with ServerProcess(env, workers=2) as server:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}
            category = client.post("/v1/categories", json={"slug": "lamps", "name": "Lamps"}, headers=_bearer(token()))
            assert category.status_code == 201, category.text
            body = {"sku": "LAMP-1", "name": "Desk lamp", "category": "lamps", "price": "19.99", "currency": "EUR"}
            created = client.post("/v1/products", json=body, headers=_bearer(token()))
            assert created.status_code == 201, created.text
            read = client.get(created.headers["Location"], headers=_bearer(token()))
            assert read.status_code == 200, read.text
            assert read.json()["sku"] == "LAMP-1"
            # Tokens production must refuse: the dev secret's, and another issuer's key.
            dev_token = jwt.encode(claims(), DEV_JWT_SECRET, algorithm="HS256")
            assert client.get("/v1/products", headers=_bearer(dev_token)).status_code == 401
            stranger = rs256("stranger", claims(), kid=JWKS_KID)
            assert client.get("/v1/products", headers=_bearer(stranger)).status_code == 401
        assert server.stop(timeout=30) == 0

    # Production logs are JSON lines only: no banner, no traceback, nothing on stderr.
    records = [json.loads(line) for line in server.stdout]  # raises on a line that is not JSON
    assert all(isinstance(record, dict) for record in records)
    access = [r for r in records if r["logger"] == "catalog.access" and r["route"] != "/livez"]
    assert Counter((r["method"], r["route"], r["status"]) for r in access) == Counter(
        {
            ("GET", "/readyz", 200): 1,
            ("POST", "/v1/categories", 201): 1,
            ("POST", "/v1/products", 201): 1,
            ("GET", "/v1/products/{product_id}", 200): 1,
            ("GET", "/v1/products", 401): 2,
        }
    )
    assert server.stderr == []


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        pytest.param({"CATALOG_JWT_SECRET": DEV_JWT_SECRET}, "CATALOG_JWT_PUBLIC_KEY_FILE", id="dev-secret"),
        pytest.param({}, "CATALOG_JWT_JWKS_URL", id="no-key"),
        pytest.param(
            {"CATALOG_JWT_SECRET": DEV_JWT_SECRET, "CATALOG_JWT_PUBLIC_KEY_FILE": "{public_key}"},
            "set exactly one",
            id="dev-secret-beside-a-public-key",
        ),
    ],
)
@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_production_refuses_the_dev_secret(
    empty_database: str, tmp_path: Path, command: str, keys: dict[str, str], named: str
) -> None:
    key_file = tmp_path / "jwt-public-key.pem"
    key_file.write_bytes(public_pem("production"))
    env = production_env(empty_database, tmp_path, **{k: v.format(public_key=key_file) for k, v in keys.items()})
    started = time.monotonic()

    result = run_catalog(command, env=env, timeout=30)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("catalog: invalid configuration: ")
    assert named in line
    assert DEV_JWT_SECRET not in line
    assert time.monotonic() - started < 15
