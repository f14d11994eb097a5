"""THIS image (the OCI layout `make image` exported) pushed to a local registry, signed with cosign
and verified: the registry's digest is the digest `make image` printed, so a pin of that digest
runs exactly what the tests ran. The pipelines' end-to-end test reuses tests/support/registry.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.container.podman import ImageBuild, podman
from tests.support.registry import cosign_keypair, cosign_sign, cosign_verify
from tools.cluster.registry import LocalRegistry, crane, push_layout

pytestmark = pytest.mark.container


def test_pushed_image_keeps_its_digest_and_verifies_with_its_signature(
    catalog_image: ImageBuild, local_registry: LocalRegistry, tmp_path: Path
):
    repository = f"{local_registry.host}/catalog"
    version = catalog_image.reference.rsplit(":", 1)[1]
    (tmp_path / "signer").mkdir()
    (tmp_path / "stranger").mkdir()
    key, public_key = cosign_keypair(tmp_path / "signer")
    _, stranger_key = cosign_keypair(tmp_path / "stranger")

    pushed = push_layout(catalog_image.layout, f"{repository}:{version}")
    pinned = f"{repository}@{pushed}"
    cosign_sign(pinned, key)
    verified = cosign_verify(pinned, public_key)
    refused = cosign_verify(pinned, stranger_key, check=False)
    config_digest = json.loads(crane("manifest", pinned))["config"]["digest"]
    image_id = podman("image", "inspect", "--format", "{{.Id}}", catalog_image.reference).stdout.strip()

    assert pushed == catalog_image.digest
    assert config_digest == f"sha256:{image_id}", "the registry holds another image than the one the tests ran"
    claims = json.loads(verified.stdout)
    assert [c["critical"]["image"]["docker-manifest-digest"] for c in claims] == [catalog_image.digest]
    assert refused.returncode != 0
    assert "no matching signatures" in refused.stderr
