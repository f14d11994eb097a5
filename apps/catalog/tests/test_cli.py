"""The `catalog` command as `make run` and `make token` use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from catalog.settings import DEV_JWT_SECRET


def catalog(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "DATABASE_URL", "OTEL_"))}
    clean["DATABASE_URL"] = f"sqlite://{tmp_path}/cli.sqlite3"
    return subprocess.run(
        [sys.executable, "-m", "catalog", *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_token_prints_a_dev_token_alone_on_the_last_line(tmp_path: Path) -> None:
    result = catalog("token", tmp_path=tmp_path)

    token = result.stdout.splitlines()[-1]
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"], audience="catalog-api")
    assert result.returncode == 0
    assert set(claims["scope"].split()) == {"catalog:read", "catalog:write"}
    assert {"exp", "iat", "iss", "aud", "sub"} <= claims.keys()


def test_token_refused_in_production(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    key.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    result = catalog(
        "token",
        tmp_path=tmp_path,
        CATALOG_ENV="production",
        DATABASE_URL="postgres://catalog@db:5432/catalog",
        CATALOG_JWT_PUBLIC_KEY_FILE=str(key),
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert "production" in result.stderr


def test_migrate_and_seed_are_repeatable(tmp_path: Path) -> None:
    runs = [catalog(command, tmp_path=tmp_path) for command in ("migrate", "migrate", "seed", "seed")]

    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert "loaded" in runs[2].stdout
    assert "already present" in runs[3].stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"CATALOG_PORT": "eighty"}, "CATALOG_PORT", id="port"),
        pytest.param({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL", id="database"),
    ],
)
def test_serve_stops_with_one_line_on_bad_config(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    result = catalog("serve", tmp_path=tmp_path, **env)

    assert result.returncode == 2
    assert variable in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
