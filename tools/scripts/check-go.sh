#!/usr/bin/env bash
# Purpose: fail in one line when Go is missing or older than the newest `go` directive of the
#   modules under tools/ (the toolchain is never auto-downloaded: GOTOOLCHAIN=local).
# Prerequisites: none.
# Usage: tools/scripts/check-go.sh [TOOLS_DIR]
set -o errexit -o nounset -o pipefail

tools_dir="${1:-tools}"
required="$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$tools_dir"/go.mod "$tools_dir"/*/go.mod | sort -V | tail -1)"
if ! command -v go >/dev/null 2>&1; then
  echo "make tools: Go not found on PATH; install Go >= $required" >&2
  exit 1
fi
have="$(GOTOOLCHAIN=local go env GOVERSION)"
have="${have#go}"
if [[ "$(printf '%s\n%s\n' "$required" "$have" | sort -V | head -1)" != "$required" ]]; then
  echo "make tools: Go $have is too old; tools/ needs Go >= $required" >&2
  exit 1
fi
