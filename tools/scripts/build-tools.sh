#!/usr/bin/env bash
# Purpose: build every `tool` of one Go module under tools/ into a bin directory, only when
#   something that affects the binaries changed. The stamp key covers the Go version, the
#   module's go.mod, go.sum and own .go sources, the build tags, the resolved link flags and this
#   script; with an unchanged key and all binaries present it prints "up to date" and exits in
#   well under a second.
# Prerequisites: go (checked by tools/scripts/check-go.sh first), the Go module proxy on a
#   cold module cache.
# Usage: build-tools.sh [--tags 'TAG ...'] MODULE_DIR BIN_DIR STAMP_DIR 'LDFLAGS' [OLD=NEW ...]
#   LDFLAGS may name module versions as @module@ (e.g. @helm.sh/helm/v3@ -> v3.21.4) or a
#   minor number as @module:minor@ (k8s.io/client-go v0.36.2 -> 36) or the version without its
#   leading v as @module:number@ (argo-cd v3.5.7 -> 3.5.7), resolved in MODULE_DIR,
#   so each version is written once, in go.mod. OLD=NEW renames a binary (server=etcd).
#   --tags passes Go build tags (containerd leaves out snapshotters that need cgo).
set -o errexit -o nounset -o pipefail

tags=""
if [[ "${1:-}" == "--tags" ]]; then
  tags="$2"
  shift 2
fi
module_dir="$1" bin_dir="$2" stamp_dir="$3" ldflags_template="$4"
shift 4
renames=("$@")

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
group="$(basename "$(cd "$module_dir" && pwd)")"
[[ "$module_dir" == "tools" || "$module_dir" == "tools/" ]] && group="tools"

resolve_ldflags() {
  local out="$1" token module field version
  while [[ "$out" =~ @([^@[:space:]]+)@ ]]; do
    token="${BASH_REMATCH[1]}"
    module="${token%%:*}"
    field=""
    [[ "$token" == *:* ]] && field="${token#*:}"
    version="$(cd "$module_dir" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$module")"
    if [[ "$field" == "minor" ]]; then
      version="$(cut -d. -f2 <<<"$version")"
    elif [[ "$field" == "number" ]]; then
      version="${version#v}"
    fi
    out="${out//@${token}@/${version}}"
  done
  printf '%s' "$out"
}

ldflags="-s -w $(resolve_ldflags "$ldflags_template")"
mapfile -t tools < <(cd "$module_dir" && go mod edit -json | python3 -c '
import json, sys
for tool in json.load(sys.stdin).get("Tool") or []:
    print(tool["Path"])')

binary_name() {
  local name="${1##*/}" rename
  if [[ "$name" =~ ^v[0-9]+$ ]]; then
    name="$(basename "$(dirname "$1")")"
  fi
  for rename in "${renames[@]+"${renames[@]}"}"; do
    [[ "$name" == "${rename%%=*}" ]] && name="${rename#*=}"
  done
  printf '%s' "$name"
}

names=()
for tool in "${tools[@]}"; do
  names+=("$(binary_name "$tool")")
done

key="$( {
  go env GOVERSION GOOS GOARCH
  cat "$module_dir/go.mod"
  # A module of our own source (tools/pause) has no dependencies, hence no go.sum.
  [[ ! -f "$module_dir/go.sum" ]] || cat "$module_dir/go.sum"
  find "$module_dir" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0 -r cat
  printf '%s\n' "$ldflags" "tags=$tags" "${renames[@]+"${renames[@]}"}"
  cat "${BASH_SOURCE[0]}"
} | sha256sum | cut -d' ' -f1)"
stamp="$stamp_dir/$group.stamp"

missing=0
for name in "${names[@]}"; do
  [[ -x "$bin_dir/$name" ]] || missing=1
done
if [[ $missing -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  echo "tools: $group up to date (${names[*]})"
  exit 0
fi

echo "tools: building $group (${names[*]}) ..."
mkdir -p "$bin_dir" "$stamp_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
(cd "$module_dir" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$work/" tool)
for tool in "${tools[@]}"; do
  built="${tool##*/}"
  [[ "$built" =~ ^v[0-9]+$ ]] && built="$(basename "$(dirname "$tool")")"
  mv -f "$work/$built" "$bin_dir/$(binary_name "$tool")"
done
printf '%s\n' "$key" >"$stamp"
echo "tools: built $group in $((SECONDS - start))s"
