#!/usr/bin/env bash
# Purpose: build apps/catalog/Dockerfile with buildah, tag it <semver> and <short SHA>, export it
#   as an OCI layout (var/image/oci, compressed layers: the bytes a registry receives, so its
#   manifest digest is the digest a push yields) and print reference, digest and size.
#   The base comes from base.sh (the official image pinned in the Dockerfile, or where it cannot
#   be pulled the local Debian-built one from make-base.sh). An image already built from the
#   same sources, base and revision is reused: the one a finished build tagged <name>:context-<sha>.
#   buildah is the only container tool it runs (podman and debootstrap only to make the local
#   base), so the pipeline's build step runs this same script inside a pod.
# Prerequisites: buildah (podman, debootstrap and root for the local base); PyPI reachable.
# Usage: apps/catalog/image/build.sh
#   CATALOG_BASE_IMAGE=ref  use this base instead of choosing (base.sh)
#   CATALOG_IMAGE=name      repository of the local tags (default localhost/catalog)
#   CATALOG_IMAGE_REBUILD=1 build even when a matching image exists (layer cache still applies)
#   CATALOG_BUILD_CACHE=repo  also take cached layers from, and push new ones to, this registry
#                           repository (buildah --cache-from/--cache-to)
#   Prints `key: value` lines: base, tags, layout (the OCI layout to push), image, digest, size.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
context="$(dirname "$here")"
repo="$(cd "$context/../.." && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

command -v buildah >/dev/null || { echo "image: buildah is missing (apt-get install buildah)" >&2; exit 1; }

name="${CATALOG_IMAGE:-localhost/catalog}"
out="$repo/var/image"
base="$("$here/base.sh" | tail -n 1)"
# A base named by the caller may still be only in its registry.
buildah inspect --type image "$base" >/dev/null 2>&1 || buildah pull --quiet "$base" >/dev/null

# Versions: vX.Y.Z on HEAD gives X.Y.Z, otherwise <package version>-dev.<sha>; a dirty tree says so.
revision="$(git -C "$repo" rev-parse HEAD)"
short="$(git -C "$repo" rev-parse --short=12 HEAD)"
if [ -n "$(git -C "$repo" status --porcelain -- "$context")" ]; then
  short="$short-dirty"
fi
package_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$context/pyproject.toml")"
if tag="$(git -C "$repo" describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null)"; then
  version="${tag#v}"
else
  version="$package_version-dev.$short"
fi
source_url="$(git -C "$repo" config --get remote.origin.url || echo "file://$repo")"

# What the image is made of: the build context as .dockerignore admits it, the Dockerfile, the base.
context_sha="$(
  cd "$context"
  {
    find Dockerfile .dockerignore constraints.txt pyproject.toml src -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum
    buildah inspect --type image --format '{{.FromImageID}}' "$base"
    echo "$version $revision $source_url"
  } | sha256sum | cut -c1-64
)"

mkdir -p "$out"
# Only a finished build gets this tag. The context label alone would also match the intermediate
# images of a failed build (buildah commits every layer with the build's labels), and reusing one
# of those exports an image with no catalog in it.
finished="$name:context-$context_sha"
if buildah inspect --type image "$finished" >/dev/null 2>&1 && [ -z "${CATALOG_IMAGE_REBUILD:-}" ]; then
  image_id="$(buildah inspect --type image --format '{{.FromImageID}}' "$finished")"
  echo "image: reusing $image_id (same sources, base and revision)" >&2
else
  ca_bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
  build_args=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
    --build-arg "SOURCE=$source_url" --build-arg "CONTEXT_SHA256=$context_sha")
  # The Dockerfile's LABEL step expands those ARGs, but buildah 1.28 reuses a cached LABEL step
  # when only the ARG values changed (a new commit kept the old revision); --label is applied at
  # commit time, so it always wins.
  build_args+=(--label "org.opencontainers.image.version=$version" --label "org.opencontainers.image.revision=$revision"
    --label "org.opencontainers.image.source=$source_url" --label "org.opencontainers.image.base.name=$base"
    --label "org.catalog-platform.context-sha256=$context_sha")
  [ -z "${PIP_INDEX_URL:-}" ] || build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  [ ! -s "$ca_bundle" ] || build_args+=(--secret "id=ca-bundle,src=$ca_bundle")
  # RUN steps use the host's network and resolver: a build network's NAT cannot reach a resolver
  # that only the host can (a VM's link-local or loopback DNS), and then pip cannot find PyPI.
  build_args+=(--network host)
  [ -z "${CATALOG_BUILD_CACHE:-}" ] || build_args+=(--cache-from "$CATALOG_BUILD_CACHE" --cache-to "$CATALOG_BUILD_CACHE")
  started=$SECONDS
  rm -f "$out/iid"
  buildah bud --quiet --layers --format oci --runtime runc "${build_args[@]}" \
    --iidfile "$out/iid" --file "$context/Dockerfile" "$context" >&2
  image_id="$(cat "$out/iid")"
  buildah tag "${image_id#sha256:}" "$finished"
  echo "image: built in $((SECONDS - started)) s" >&2
fi
image_id="${image_id#sha256:}"
buildah tag "$image_id" "$name:$version" "$name:$short"

# The OCI layout keeps one image; re-export only when it holds another one.
if [ "$(cat "$out/oci.iid" 2>/dev/null)" != "$image_id" ]; then
  rm -rf "$out/oci" "$out/oci.digest"
  buildah push --quiet --digestfile "$out/oci.digest" "$image_id" "oci:$out/oci:$version" >&2
  echo "$image_id" >"$out/oci.iid"
fi
digest="$(cat "$out/oci.digest")"
size="$(buildah images --noheading --format '{{.Size}}' "$image_id" | sed -n 1p)"
compressed="$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(sum(l["size"] for l in m["layers"]))' \
  "$out/oci/blobs/sha256/${digest#sha256:}")"

echo "base: $base"
echo "tags: $name:$version $name:$short"
echo "layout: $out/oci"
echo "image: $name:$version"
echo "digest: $digest"
echo "size: $size unpacked, $(numfmt --to=si "$compressed")B compressed"
