#!/usr/bin/env bash
# Purpose: build the pipeline's step image (Containerfile beside this script) on the project's
#   Debian base (apps/catalog/image/make-base.sh): buildah, git, uidmap with file-capability
#   newuidmap/newgidmap, python3-yaml, the steps package (argo-workflows/steps) and cosign, crane,
#   kubectl (promote's health check) and trivy from .tools/bin. The tag carries a hash of everything that goes in, so an unchanged
#   recipe is reused (one `buildah inspect`).
# Prerequisites: buildah; root and debootstrap the first time (the base); `make tools`.
# Usage: argo-workflows/image/build.sh     prints the image reference on its last line
#   STEPS_IMAGE=name   repository of the local tag (default localhost/catalog-steps)
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../../apps/catalog/image/env.sh
source "$repo/apps/catalog/image/env.sh"

tools="$repo/.tools/bin"
binaries=(cosign crane kubectl trivy)
for binary in "${binaries[@]}"; do
  [ -x "$tools/$binary" ] || { echo "steps-image: $tools/$binary is missing (make tools)" >&2; exit 1; }
done
base="$("$repo/apps/catalog/image/make-base.sh" | tail -n 1)"

context="$(mktemp -d /var/tmp/catalog-steps.XXXXXX)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/bin" "$context/steps"
cp "$here/Containerfile" "$context/"
for binary in "${binaries[@]}"; do
  cp "$tools/$binary" "$context/bin/"
done
# The package only: its tests and caches are not the step's.
tar -C "$repo/argo-workflows/steps" --exclude=__pycache__ --exclude='*.pyc' -cf - pipeline | tar -C "$context/steps" -xf -

key="$(
  cd "$context"
  {
    find . -type f -print0 | sort -z | xargs -0 sha256sum
    buildah inspect --type image --format '{{.FromImageID}}' "$base"
  } | sha256sum | cut -c1-16
)"
tag="${STEPS_IMAGE:-localhost/catalog-steps}:$key"
if ! buildah inspect --type image "$tag" >/dev/null 2>&1; then
  started=$SECONDS
  # apt runs with the host's network and resolver, as apps/catalog/image/build.sh's RUN steps do.
  buildah bud --quiet --layers --format oci --runtime runc --network host \
    --build-arg "BASE_IMAGE=$base" --tag "$tag" --file "$context/Containerfile" "$context" >&2
  echo "steps-image: built in $((SECONDS - started)) s" >&2
fi
echo "$tag"
