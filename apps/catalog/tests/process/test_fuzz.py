"""Schemathesis against the served /openapi.json of a real `catalog serve`, on both engines: every
phase (examples, coverage, fuzzing, stateful) and every check, so the document and the server
agree on each input and answer. What a schema cannot say is allowed, with its reason, in
apps/catalog/schemathesis.toml. `make fuzz` runs the same with more examples."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.tokens import make_token

pytestmark = pytest.mark.process

CONFIG = Path(__file__).parents[2] / "schemathesis.toml"
# Bounded for `make test`; a fixed seed makes a failure reproducible with the same command.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = os.environ.get("FUZZ_SEED", "1")


@pytest.mark.parametrize("database", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.pg)])
def test_server_and_document_agree(
    serve: Callable[..., ServerProcess], request: pytest.FixtureRequest, database: str
) -> None:
    server = serve(request.getfixturevalue(database), workers=2)
    token = make_token(exp=int(time.time()) + 3600)  # outlives the run
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        # One worker: schemathesis' generation is not thread-safe here (hypothesis' reflection
        # crashed once with two).
        "--workers",
        "1",
        "--no-color",
    ]

    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)

    summary = result.stdout[-4000:]
    print(summary)
    assert result.returncode == 0, summary
    assert f"Tested: {operations}" in result.stdout  # every operation of the document was exercised
    assert [r["message"] for r in server.log_records() if r["level"] == "ERROR"] == []
