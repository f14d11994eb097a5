# Pinned Go-built tools and the test control plane. Included by the root Makefile.
# Versions live only in tools/**/go.mod; the link flags below name them as @module@ and
# tools/scripts/build-tools.sh resolves them, so `--version` tells the truth.

TOOLS_BIN := .tools/bin
TOOLS_STAMPS := .tools/stamps
# helm reads plugins from here (export HELM_PLUGINS=$(CURDIR)/.tools/helm-plugins; the inventories do).
HELM_PLUGINS_DIR := .tools/helm-plugins
TOOLS_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

# helm defaults .Capabilities.KubeVersion to v1.20 without these; we follow its client-go minor.
TOOLS_LDFLAGS_tools := \
  -X helm.sh/helm/v3/internal/version.version=@helm.sh/helm/v3@ \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=@k8s.io/client-go:minor@ \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=@k8s.io/client-go:minor@ \
  -X main.version=@github.com/yannh/kubeconform@ \
  -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=@github.com/google/go-containerregistry@
TOOLS_LDFLAGS_argo := -X github.com/argoproj/argo-workflows/v3.version=@github.com/argoproj/argo-workflows/v3@
TOOLS_LDFLAGS_cosign := -X sigs.k8s.io/release-utils/version.gitVersion=@github.com/sigstore/cosign/v2@
TOOLS_LDFLAGS_registry := -X github.com/distribution/distribution/v3/version.version=@github.com/distribution/distribution/v3@
TOOLS_LDFLAGS_kube-linter := -X golang.stackrox.io/kube-linter/internal/version.version=@golang.stackrox.io/kube-linter@
TOOLS_LDFLAGS_etcd :=
TOOLS_LDFLAGS_containerd := -X github.com/containerd/containerd/v2/version.Version=@github.com/containerd/containerd/v2@
TOOLS_LDFLAGS_pause :=
TOOLS_LDFLAGS_local-path-provisioner := -X main.VERSION=@github.com/rancher/local-path-provisioner@
TOOLS_LDFLAGS_kube-router := -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=@github.com/cloudnativelabs/kube-router/v2@
# metrics-server reports client-go's version variable (its own Makefile sets it so).
TOOLS_LDFLAGS_metrics-server := -X k8s.io/client-go/pkg/version.gitVersion=@sigs.k8s.io/metrics-server@
# The real node's snapshotter is overlayfs; btrfs, devmapper and zfs would need cgo or host libraries.
TOOLS_TAGS_containerd := no_btrfs no_devmapper no_zfs
TOOLS_LDFLAGS_helm-diff := -X github.com/databus23/helm-diff/v3/cmd.Version=@github.com/databus23/helm-diff/v3@
# argo-cd prints "v" + version (its VERSION file has no v) and the client-go it was built with.
TOOLS_LDFLAGS_argocd := \
  -X github.com/argoproj/argo-cd/v3/common.version=@github.com/argoproj/argo-cd/v3:number@ \
  -X github.com/argoproj/argo-cd/v3/common.kubectlVersion=@k8s.io/client-go@
TOOLS_LDFLAGS_trivy := -X github.com/aquasecurity/trivy/pkg/version/app.ver=@github.com/aquasecurity/trivy@
# Environment of one group's build (Trivy's release build sets GOEXPERIMENT=jsonv2; Go 1.26 needs it).
TOOLS_ENV_trivy := GOEXPERIMENT=jsonv2
TOOLS_LDFLAGS_kubernetes := \
  -X k8s.io/component-base/version.gitVersion=@k8s.io/kubernetes@ \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=@k8s.io/kubernetes:minor@ \
  -X k8s.io/component-base/version.gitTreeState=clean

# Built one module at a time, never in parallel: each `go build` already uses every core.
TOOLS_GROUPS := tools argo cosign registry kube-linter etcd kubernetes containerd pause local-path-provisioner kube-router metrics-server helm-diff argocd trivy
# OLD=NEW renames a built binary: etcd's server, Argo CD's multi-call cmd.
TOOLS_RENAMES_etcd := server=etcd
TOOLS_RENAMES_argocd := cmd=argocd
tools_dir = $(if $(filter tools,$(1)),tools,tools/$(1))

.PHONY: tools
tools: ## Build the pinned Go tools into .tools/bin (incremental; prints what it builds and how long).
	@tools/scripts/check-go.sh tools
	@$(foreach g,$(TOOLS_GROUPS),$(TOOLS_ENV_$(g)) tools/scripts/build-tools.sh $(if $(TOOLS_TAGS_$(g)),--tags '$(TOOLS_TAGS_$(g))') $(call tools_dir,$(g)) $(TOOLS_BIN) $(TOOLS_STAMPS) '$(strip $(TOOLS_LDFLAGS_$(g)))' $(TOOLS_RENAMES_$(g)) &&) true
	@tools/scripts/build-argoexec.sh $(TOOLS_BIN) $(TOOLS_STAMPS) '$(TOOLS_LDFLAGS_argo)'
	@mkdir -p $(HELM_PLUGINS_DIR)/diff/bin
	@install -m 0644 "$$(cd tools/helm-diff && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/databus23/helm-diff/v3)/plugin.yaml" $(HELM_PLUGINS_DIR)/diff/plugin.yaml
	@ln -sfn ../../../bin/helm-diff $(HELM_PLUGINS_DIR)/diff/bin/diff
	@echo "tools: helm plugin diff in $(HELM_PLUGINS_DIR) (HELM_PLUGINS)"
	@# Argo CD's repo-server runs it for every git source (the upstream image has it in /usr/local/bin).
	@install -m 0755 "$$(cd tools/argocd && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)/hack/git-verify-wrapper.sh" $(TOOLS_BIN)/git-verify-wrapper.sh
	@echo "tools: argo-cd's git-verify-wrapper.sh in $(TOOLS_BIN)"
	@cd tools/crds && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go mod download
	@echo "tools: CRD source modules in the module cache (tools/crds/go.mod)"

# Real nodes (kubelet, containerd, a storage provisioner) need root; REAL_NODES=0 leaves kwok alone.
REAL_NODES ?= 1

.PHONY: cluster-up
cluster-up: ## Start the test control plane (etcd, apiserver, controllers, kwok) with REAL_NODES real nodes (default 1, root only); kubeconfig in .tools/kubeconfig.
	@$(TOOLS_PYTHON) -m tools.cluster.controlplane up --real-nodes=$(REAL_NODES)

# Where apps/catalog/image/build.sh (`make image`) writes the image's OCI layout.
CATALOG_LAYOUT := var/image/oci

.PHONY: cluster-image
cluster-image: image ## Push `make image`'s catalog by digest to the registry of cluster-up's real nodes; prints its reference and writes .tools/catalog-values.yaml for the chart.
	@$(TOOLS_PYTHON) -m tools.cluster.controlplane image $(CATALOG_LAYOUT)

.PHONY: cluster-down
cluster-down: ## Stop the test control plane started by cluster-up and remove its state.
	@$(TOOLS_PYTHON) -m tools.cluster.controlplane down

.PHONY: upstream
upstream: venv ## Assemble the upstream charts and manifests the ci inventory installs into .tools/upstream (tools/upstream).
	@$(TOOLS_PYTHON) -m tools.cluster.upstream
