# Sourced by the image scripts (and mirrored by tests/container): podman and buildah read the
# repo's containers.conf instead of anything under /etc, so a fresh machine needs no hand edits.
# shellcheck shell=bash
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
