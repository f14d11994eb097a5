"""A bad setting stops `catalog` at once with exit 2 and one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.process_tier import server_env
from tests.support.server import run_catalog

pytestmark = pytest.mark.process


# A PostgreSQL URL that settings accept and nothing ever connects to.
UNUSED_PG_URL = "postgres://catalog@127.0.0.1:1/catalog"


@pytest.mark.parametrize(
    ("command", "values", "named"),
    [
        pytest.param("serve", {"CATALOG_PORT": "notanumber"}, "CATALOG_PORT", id="port-not-a-number"),
        pytest.param("serve", {"CATALOG_WORKERS": "0"}, "CATALOG_WORKERS", id="no-workers"),
        pytest.param("serve", {"DATABASE_URL": "mysql://x"}, "DATABASE_URL", id="unsupported-database"),
        pytest.param("serve", {"CATALOG_ENV": "production"}, "DATABASE_URL", id="production-on-sqlite"),
        pytest.param(
            "serve",
            {"CATALOG_ENV": "production", "DATABASE_URL": UNUSED_PG_URL},
            "CATALOG_JWT_PUBLIC_KEY_FILE",
            id="production-with-dev-secret-only",
        ),
        pytest.param("serve", {"CATALOG_JWT_SECRET": "short-secret"}, "CATALOG_JWT_SECRET", id="short-jwt-secret"),
        pytest.param(
            "token",
            {
                "CATALOG_ENV": "production",
                "DATABASE_URL": UNUSED_PG_URL,
                "CATALOG_JWT_SECRET": None,
                "CATALOG_JWT_PUBLIC_KEY_FILE": "{public_key}",
            },
            "production",
            id="token-in-production",
        ),
    ],
)
def test_catalog_bad_configuration_exits_with_one_line(
    tmp_path: Path, command: str, values: dict[str, str | None], named: str
) -> None:
    public_key = tmp_path / "jwt-public.pem"
    public_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    env = server_env(f"sqlite://{tmp_path}/catalog.sqlite3", tmp_path / "metrics")
    for name, value in values.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value.format(public_key=public_key)

    result = run_catalog(command, env=env, timeout=30)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("catalog: ")
    assert named in lines[0]
    if secret := env.get("CATALOG_JWT_SECRET"):
        assert secret not in result.stderr
