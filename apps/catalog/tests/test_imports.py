"""Importing the service does nothing: no module reads the environment or touches the filesystem
at import time, so a process that imports it under any configuration (the production pod, the
migration Job, a tool) starts or fails only where settings are validated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Every module of the package except the `python -m catalog` entry point, which runs the CLI.
IMPORT_ALL = """
import importlib, pkgutil, catalog
names = [m.name for m in pkgutil.walk_packages(catalog.__path__, "catalog.") if m.name != "catalog.__main__"]
for name in names:
    importlib.import_module(name)
print(len(names))
"""

PRODUCTION = {
    "CATALOG_ENV": "production",
    "DATABASE_URL": "postgres://catalog@127.0.0.1:1/catalog",
    "CATALOG_JWT_JWKS_URL": "http://127.0.0.1:1/.well-known/jwks.json",
}
# Values every setting refuses: any Settings() built at import time would raise.
REFUSED_EVERYWHERE = {
    "CATALOG_ENV": "staging",
    "DATABASE_URL": "mysql://nowhere",
    "CATALOG_PORT": "not-a-port",
    "CATALOG_WORKERS": "0",
    "CATALOG_JWT_SECRET": "short",
    "CATALOG_JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem",
    "CATALOG_LOG_LEVEL": "LOUD",
}


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param(PRODUCTION, id="production"),
        pytest.param(REFUSED_EVERYWHERE, id="every-setting-refused"),
    ],
)
def test_importing_every_module_reads_no_setting_and_writes_nothing(tmp_path: Path, environment: dict[str, str]):
    workdir, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    tmpdir.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmpdir), **environment}

    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(_modules_on_disk())
    assert list(workdir.iterdir()) == []
    assert list(tmpdir.iterdir()) == []


def _modules_on_disk() -> list[Path]:
    """The package's modules as files, so the walk above cannot silently import fewer."""
    import catalog

    root = Path(catalog.__file__).parent
    modules = [p for p in root.rglob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    packages = [p.parent for p in root.rglob("__init__.py") if p.parent != root]
    return modules + packages


def test_migrations_config_is_built_when_a_developer_asks_whatever_the_environment(monkeypatch, tmp_path: Path):
    from tortoise.cli.utils import get_tortoise_config

    import catalog.db

    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    config = get_tortoise_config("catalog.db.MIGRATIONS_CONFIG")  # what `tortoise -c ...` calls

    (connection,) = config.connections.values()
    assert connection.engine == "catalog.db_engines.sqlite"
    assert connection.credentials["file_path"] == "var/makemigrations.sqlite3"
    assert [p.name for p in tmp_path.iterdir()] == ["var"]
    with pytest.raises(AttributeError, match="NO_SUCH_CONFIG"):
        catalog.db.NO_SUCH_CONFIG  # noqa: B018
