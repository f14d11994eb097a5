// The sandbox ("pause") program of the real test node, from source in this folder: the upstream
// image lives on a registry this repo never pulls from. The harness packs the static binary into
// an OCI image itself and imports it into the node's containerd: no registry or image builder.
module catalog-platform/tools/pause

go 1.26.0

tool catalog-platform/tools/pause
