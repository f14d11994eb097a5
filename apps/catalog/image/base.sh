#!/usr/bin/env bash
# Purpose: print the base image the catalog image builds on: CATALOG_BASE_IMAGE when set, else the
#   official python image pinned in the Dockerfile when it is present or can be pulled, else the
#   local Debian-built stand-in (made once per machine by make-base.sh, then reused).
# Prerequisites: buildah (podman, debootstrap and root only when the local base has to be made).
# Usage: apps/catalog/image/base.sh      the reference on its last line
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

if [ -n "${CATALOG_BASE_IMAGE:-}" ]; then
  echo "$CATALOG_BASE_IMAGE"
  exit 0
fi
official="$(sed -n 's/^ARG BASE_IMAGE=//p' "$here/../Dockerfile")"
if buildah inspect --type image "$official" >/dev/null 2>&1 || buildah pull --quiet "$official" >/dev/null 2>&1; then
  echo "$official"
else
  echo "image: $official cannot be pulled here; using the local Debian-built base" >&2
  "$here/make-base.sh" | tail -n 1
fi
