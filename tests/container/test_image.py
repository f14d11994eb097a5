"""The built image itself: metadata, what the final stage holds (and does not), its size budget,
and a start refused with one clear line when a required setting is missing."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.container.podman import PODMAN_ENV, ImageBuild, dev_pod, make_image, podman, run_once, session_labels
from tools.cluster.toolbox import REPO_ROOT

pytestmark = pytest.mark.container

MB = 1_000_000
# The budget apps/catalog/image/README.md states. Own layers = the venv and the user; the base is Debian + python3.
BUDGET_TOTAL_BYTES = 250 * MB
BUDGET_OWN_LAYERS_BYTES = 110 * MB
BUDGET_COMPRESSED_BYTES = 90 * MB

# What a final stage must not hold: a compiler or linker, pip or its cache, tests, build leftovers.
_FORBIDDEN = {
    "compiler": re.compile(r"^usr/(local/)?bin/(gcc|cc|c\+\+|g\+\+|clang|ld|x86_64-linux-gnu-gcc(-\d+)?)$|/cc1$"),
    "pip": re.compile(r"^opt/catalog/(bin/pip[\d.]*$|lib/python3\.\d+/site-packages/pip/)"),
    "pip cache": re.compile(r"(^|/)\.cache/pip/"),
    "tests": re.compile(r"site-packages/catalog/tests/|(^|/)conftest\.py$"),
    "build leftovers": re.compile(r"^(src|wheels|build-wheels)/|^run/secrets/."),
}


def _inspect(reference: str) -> dict:
    return json.loads(podman("image", "inspect", reference).stdout)[0]


def _exported_files(reference: str) -> dict[str, tarfile.TarInfo]:
    """Every path of a container made from the image (the final stage's whole filesystem)."""
    name = f"catalog-export-{time.monotonic_ns()}"
    podman("create", "--name", name, *session_labels(), reference)
    try:
        with subprocess.Popen(["podman", "export", name], env=PODMAN_ENV, stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
                members = {member.name.removeprefix("./"): member for member in tar}
    finally:
        podman("rm", "--force", name, check=False)
    return members


def _bundle_in_image(reference: str) -> str:
    """The image's CA bundle; the CA that re-signs outgoing HTTPS here must not be in it."""
    result = podman("run", "--rm", "--entrypoint", "cat", reference, "/etc/ssl/certs/ca-certificates.crt")
    return result.stdout


def test_image_metadata_is_what_the_chart_and_the_pipelines_read(catalog_image: ImageBuild):
    config = _inspect(catalog_image.reference)["Config"]
    labels = config["Labels"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["catalog"]
    assert config["Cmd"] == ["serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert "CATALOG_HOST=0.0.0.0" in config["Env"]
    assert labels["org.opencontainers.image.revision"] == head
    assert catalog_image.reference.endswith(":" + labels["org.opencontainers.image.version"])
    assert labels["org.opencontainers.image.source"]
    assert labels["org.opencontainers.image.base.name"] == catalog_image.base
    short_sha_tag = next(tag for tag in catalog_image.tags if tag != catalog_image.reference)
    assert short_sha_tag.split(":")[-1].startswith(head[:12])


def test_final_stage_holds_the_venv_and_nothing_of_the_build(catalog_image: ImageBuild):
    files = _exported_files(catalog_image.reference)

    found = {what: sorted(p for p in files if pattern.search(p))[:5] for what, pattern in _FORBIDDEN.items()}
    assert found == {what: [] for what in _FORBIDDEN}
    assert files["opt/catalog/bin/catalog"].isfile()
    data = files["var/lib/catalog"]
    assert (data.isdir(), data.uid, data.gid) == (True, 10001, 10001)


def test_build_ca_bundle_is_lent_not_baked(catalog_image: ImageBuild):
    local_cas = {
        path.name: _pem_body(path.read_text()) for path in Path("/usr/local/share/ca-certificates").glob("*.crt")
    }
    bundle = "".join(_bundle_in_image(catalog_image.reference).split())

    assert bundle.count("BEGINCERTIFICATE") > 50, "the image's own bundle (ca-certificates) is missing"
    assert [name for name, body in local_cas.items() if body and body in bundle] == []


def _pem_body(pem: str) -> str:
    lines = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return "".join(lines)


def test_image_fits_its_size_budget(catalog_image: ImageBuild):
    size = _inspect(catalog_image.reference)["Size"]
    base_size = _inspect(catalog_image.base)["Size"]
    manifest = json.loads(
        (catalog_image.layout / "blobs/sha256" / catalog_image.digest.removeprefix("sha256:")).read_text()
    )
    compressed = sum(layer["size"] for layer in manifest["layers"])
    own = size - base_size
    print(f"\nimage {size / MB:.0f} MB unpacked ({own / MB:.0f} MB own layers), {compressed / MB:.0f} MB compressed")

    assert size <= BUDGET_TOTAL_BYTES
    assert own <= BUDGET_OWN_LAYERS_BYTES
    assert compressed <= BUDGET_COMPRESSED_BYTES


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"CATALOG_ENV": "production"}, "DATABASE_URL", id="production-on-sqlite"),
        pytest.param(
            {"CATALOG_ENV": "production", "DATABASE_URL": "postgres://catalog@db:5432/catalog"},
            "CATALOG_JWT_JWKS_URL",
            id="production-without-jwt-key",
        ),
        pytest.param({"CATALOG_WORKERS": "0"}, "CATALOG_WORKERS", id="no-workers"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", id="otlp-not-a-url"
        ),
    ],
)
def test_container_refuses_to_start_with_one_clear_line(catalog_image: ImageBuild, env, variable):
    started = time.monotonic()
    # dev's settings without its dev-only JWT secret (production takes a key from existingSecret), plus `env`.
    result = run_once(catalog_image.reference, dev_pod().without_env("CATALOG_JWT_SECRET").with_env(**env))
    elapsed = time.monotonic() - started

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("catalog: invalid configuration: ")
    assert variable in lines[0]
    assert result.stdout == ""
    assert elapsed < 15, "a refused start must exit at once, not hang until a probe kills it"


def test_make_image_reuses_only_a_finished_build(catalog_image: ImageBuild):
    """buildah commits every layer of a build with the build's labels, so a failed build leaves
    images that look like the finished one; `make image` must never reuse one of those."""
    context = _inspect(catalog_image.reference)["Labels"]["org.catalog-platform.context-sha256"]
    working = subprocess.run(
        ["buildah", "from", "scratch"], env=PODMAN_ENV, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    subprocess.run(
        ["buildah", "config", "--label", f"org.catalog-platform.context-sha256={context}", working],
        env=PODMAN_ENV,
        check=True,
        timeout=60,
    )
    unfinished = subprocess.run(
        ["buildah", "commit", "--rm", "--quiet", working], env=PODMAN_ENV, capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        again = make_image()

        assert _inspect(again.reference)["Id"] == _inspect(catalog_image.reference)["Id"] != unfinished
        assert again.digest == catalog_image.digest
    finally:
        podman("rmi", "--force", unfinished, check=False)
