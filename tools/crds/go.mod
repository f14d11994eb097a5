// Upstream modules whose trees hold the CustomResourceDefinitions our manifests use. Nothing here
// is built: the test harness (tools/cluster/crds.py) runs `go mod download -json module@version`
// for each require line and installs the CRD YAML files from the module cache into the test
// control plane. Do not run `go mod tidy` here (it would drop these unimported requires).
module catalog-platform/tools/crds

go 1.26.6

require (
	// Application, AppProject, ApplicationSet (manifests/crds). v3.6 needs go >= 1.27.
	github.com/argoproj/argo-cd/v3 v3.5.7
	// Workflow, WorkflowTemplate, CronWorkflow, WorkflowEventBinding, ... (manifests/base/crds/full);
	// same version as the argo CLI in ../argo.
	github.com/argoproj/argo-workflows/v3 v3.6.18
	// ImageValidatingPolicy for signature admission (config/crds/policies.kyverno.io).
	github.com/kyverno/kyverno v1.19.1
	// ServiceMonitor, PrometheusRule, ... (example/prometheus-operator-crd).
	github.com/prometheus-operator/prometheus-operator v0.85.0
	// Gateway API standard channel: Gateway, HTTPRoute, ... (config/crd/standard).
	sigs.k8s.io/gateway-api v1.6.3
)
