// Upstream charts and manifests the Ansible roles install, reached through the Go module proxy
// (no chart repository or GitHub download is reachable here). Nothing is built:
// tools/scripts/upstream-artifacts.py downloads each require below (checked against go.sum) and
// assembles what tools/upstream/artifacts.yml lists into .tools/upstream/, which the ci
// inventory points the roles at. Do not run `go mod tidy` here (it would drop these requires).
module catalog-platform/tools/upstream

go 1.26.6

require (
	// Argo CD install manifest (manifests/install.yaml), the same file as the v3.5.7 release asset.
	github.com/argoproj/argo-cd/v3 v3.5.7
	// Argo Workflows cluster install (manifests/cluster-install), same version as the argo CLI.
	github.com/argoproj/argo-workflows/v3 v3.6.18
	// grafana chart (kube-prometheus-stack's dependency moved to grafana-community) and the loki
	// chart 18.11.7.
	github.com/grafana-community/helm-charts v0.0.0-20260829030558-dbf9f4fb5fa1
	// rollout-operator chart 0.51.1, the loki chart's dependency (disabled, but Helm needs it present).
	github.com/grafana/helm-charts v0.0.0-20260820194520-7a0ab968961a
	// Kyverno chart (charts/kyverno).
	github.com/kyverno/kyverno v1.19.1
	// minio chart 5.4.0 (helm/minio), the loki chart's dependency (disabled, but Helm needs it present).
	github.com/minio/minio v0.0.0-20260212201848-7aac2a2c5b7c
	// kube-prometheus-stack 88.6.1 and its prometheus-community dependencies, at one commit.
	github.com/prometheus-community/helm-charts v0.0.0-20260828105119-ed5d7d9b5933
)
