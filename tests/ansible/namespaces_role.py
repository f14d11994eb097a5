"""What the namespaces role creates, read from the role itself (defaults and policy files), so the
tests that need such a namespace and the tests of the role share one source."""

from __future__ import annotations

from pathlib import Path

import yaml

from tools.cluster.toolbox import REPO_ROOT

ROLE = REPO_ROOT / "roles" / "namespaces"
_PSA = "pod-security.kubernetes.io"


def _defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def entries() -> list[dict]:
    """namespaces_list: name, policy, pod_security per namespace."""
    return _defaults()["namespaces_list"]


def entry(name: str) -> dict:
    return next(e for e in entries() if e["name"] == name)


def owner_label() -> dict[str, str]:
    return _defaults()["namespaces_owner_label"]


def labels(item: dict) -> dict[str, str]:
    """The labels the role puts on a namespace: owner, Pod Security enforce at its level, audit
    and warn at restricted."""
    return {
        **owner_label(),
        f"{_PSA}/enforce": item["pod_security"],
        f"{_PSA}/audit": "restricted",
        f"{_PSA}/warn": "restricted",
    }


def policy_file(item: dict) -> Path:
    return ROLE / "files" / "policy" / f"{item['policy']}.yaml"


def policy(item: dict, namespace: str | None = None) -> list[dict]:
    """The policy documents of a namespace entry, placed in `namespace` (default: its own)."""
    target = namespace or item["name"]
    return [
        dict(d, metadata={**d["metadata"], "namespace": target})
        for d in yaml.safe_load_all(policy_file(item).read_text())
    ]
