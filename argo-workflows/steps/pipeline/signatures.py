"""cosign verification of an image digest with the platform's public key, before anything is pinned.

cosign v2 with a local key: no transparency log to consult (--insecure-ignore-tlog), and a registry
that may answer in plain HTTP (--allow-http-registry; loopback and private addresses do anyway)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import Failed
from pipeline.proc import last_line, run


def verify(reference: str, digest: str, public_key: Path) -> None:
    """Refuse unless a signature made by `public_key` covers exactly `digest`."""
    result = run(
        [
            "cosign",
            "verify",
            "--key",
            str(public_key),
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            "--output",
            "json",
            reference,
        ],
        check=False,
    )
    if result.returncode != 0:
        raise Failed(f"cosign verify refused {reference}: {last_line(result.stderr)}; sign it with the platform's key")
    # cosign checks the signed payload against the digest itself; reading it back keeps that promise
    # visible here: every signature it accepted must name this digest and no other.
    try:
        payloads = json.loads(result.stdout)
        signed = {payload["critical"]["image"]["docker-manifest-digest"] for payload in payloads}
    except (ValueError, KeyError, TypeError):
        raise Failed(f"cosign verify of {reference} printed no signature payload; check the cosign version") from None
    if signed != {digest}:
        raise Failed(f"signatures for {reference} name {sorted(signed)}, not {digest}; re-sign the image")
