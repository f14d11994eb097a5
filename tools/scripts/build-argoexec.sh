#!/usr/bin/env bash
# Purpose: build argoexec (tools/argoexec) with build-tools.sh, from a copy of the argo-workflows
#   module tools/argo pins, taken out of the Go module cache with
#   workflow/executor/os-specific/signal_linux.go restored (upstream's is a symbolic link to
#   signal_darwin.go; module zips drop links, and the Go command refuses to overlay files under
#   GOMODCACHE). The copy is rewritten only when the pin or this script changed.
# Prerequisites: go; the Go module proxy on a cold module cache.
# Usage: tools/scripts/build-argoexec.sh BIN_DIR STAMP_DIR 'LDFLAGS' (from the repository root;
#   `make tools` runs it with tools/argo's link flags: @module@ names the pinned version)
set -o errexit -o nounset -o pipefail

bin_dir="$1" stamp_dir="$2" ldflags="$3"
module=github.com/argoproj/argo-workflows/v3
target=.tools/src/argo-workflows # tools/argoexec/go.mod's replace path
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly

pinned() { sed -n "s|^[[:space:]]*\(require \)\{0,1\}$module \(v[^ ]*\).*|\2|p" "$1/go.mod"; }
version="$(pinned tools/argo)"
if [[ -z "$version" || "$version" != "$(pinned tools/argoexec)" ]]; then
  echo "tools: tools/argoexec pins $module $(pinned tools/argoexec), tools/argo $version: make them equal" >&2
  exit 1
fi

build() {
  # The replace is a directory, so build-tools.sh would resolve the version to nothing: it is given here.
  tools/scripts/build-tools.sh tools/argoexec "$bin_dir" "$stamp_dir" "${ldflags//@$module@/$version}"
}
stamp="$version $(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [[ -f "$target/.source" && "$(cat "$target/.source")" == "$stamp" ]]; then
  build
  exit 0
fi
source_dir="$(cd tools/argo && go mod download -json "$module@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
os_specific=workflow/executor/os-specific
if [[ -e "$source_dir/$os_specific/signal_linux.go" ]]; then
  echo "tools: $module $version ships signal_linux.go now: build argoexec from the module cache" >&2
  exit 1
fi
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial" "$target"
cp -r "$source_dir" "$target.partial"
chmod -R u+w "$target.partial"
cp "$target.partial/$os_specific/signal_darwin.go" "$target.partial/$os_specific/signal_linux.go"
printf '%s\n' "$stamp" >"$target.partial/.source"
mv "$target.partial" "$target"
echo "tools: $module $version source for argoexec in $target (signal_linux.go restored)"
build
