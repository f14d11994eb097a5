#!/usr/bin/env bash
# Purpose: make the local stand-in for the official python:3.11-slim-bookworm base where no image
#   can be pulled: debootstrap Debian bookworm (minbase + python3, python3-venv, ca-certificates),
#   strip docs and caches, `podman import` it. The tag carries a hash of this script, so a changed
#   recipe makes a new base and an unchanged one costs one `podman image exists` (well under 1 s).
# Prerequisites: root, debootstrap, podman, Debian's apt mirror (deb.debian.org) reachable.
# Usage: apps/catalog/image/make-base.sh      prints the base image reference on its last line
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
tag="localhost/catalog-base:bookworm-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"

if podman image exists "$tag"; then
  echo "$tag"
  exit 0
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "make-base: debootstrap needs root (run as root or use the official base)" >&2; exit 1; }

work="$(mktemp -d /var/tmp/catalog-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
started=$SECONDS
echo "make-base: debootstrap bookworm from $mirror (~2-4 min) ..." >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  echo "make-base: debootstrap failed (log above)" >&2
  exit 1
}
# What an image needs no copy of: docs, man pages, translations, package caches and lists, logs.
rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian,linda}/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* \
  "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname
find "$rootfs" -name __pycache__ -type d -prune -exec rm -rf {} +

tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
# The official image's settings that the Dockerfile relies on: a UTF-8 locale and PATH.
podman import --quiet \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=debootstrap bookworm minbase + python3, made $(date -u +%F) by apps/catalog/image/make-base.sh" \
  "$work/rootfs.tar" "$tag" >/dev/null
# Bases of earlier recipes go (images built on them keep their layers until they are removed).
podman images --format '{{.Repository}}:{{.Tag}}' "${tag%%:*}" | grep -vxF "$tag" | xargs -r podman untag 2>/dev/null || true
echo "make-base: $tag in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=si)B" >&2
echo "$tag"
