"""The `catalog` command as `make run` and `make token` use it (bad configuration: test_server_process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt

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


def test_migrate_and_seed_are_repeatable(tmp_path: Path) -> None:
    runs = [catalog(command, tmp_path=tmp_path) for command in ("migrate", "migrate", "seed", "seed")]

    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert "loaded" in runs[2].stdout
    assert "already present" in runs[3].stdout
