{{/* Names, labels and the few derived values every template shares. */}}

{{- define "catalog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "catalog.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "catalog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "catalog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "catalog.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "catalog.selectorLabels" . }}
app.kubernetes.io/version: {{ include "catalog.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: catalog
{{- end }}

{{/* Labels of the server pods; `component` keeps them apart from the migration and test pods. */}}
{{- define "catalog.serverSelectorLabels" -}}
{{ include "catalog.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* A label value for humans: the tag, or the appVersion. */}}
{{- define "catalog.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* repository@sha256:... when a digest is pinned, else repository:tag. */}}
{{- define "catalog.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "catalog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "catalog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Replicas the release runs at rest: the HPA's floor when autoscaling. */}}
{{- define "catalog.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "catalog.sqlite" -}}
{{- if eq .Values.database.engine "sqlite" }}true{{ end }}
{{- end }}

{{- define "catalog.devSecretName" -}}
{{ include "catalog.fullname" . }}-dev-only-jwt
{{- end }}

{{/* The restricted Pod Security profile, for every container of the release. */}}
{{- define "catalog.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The image's numeric user: the Dockerfile creates UID/GID 10001, so runAsNonRoot can check it. */}}
{{- define "catalog.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The service's plain settings, NAME: "value" lines (docs/configuration.md). */}}
{{- define "catalog.configData" -}}
CATALOG_ENV: {{ .Values.config.env | quote }}
CATALOG_HOST: "0.0.0.0"
CATALOG_PORT: "8000"
CATALOG_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
CATALOG_WORKERS: {{ .Values.config.workers | quote }}
CATALOG_GRACEFUL_SHUTDOWN_SECONDS: {{ .Values.config.gracefulShutdownSeconds | quote }}
CATALOG_DRAIN_SECONDS: {{ .Values.config.drainSeconds | quote }}
CATALOG_METRICS_DIR: /tmp/metrics
CATALOG_JWT_ISSUER: {{ .Values.config.jwt.issuer | quote }}
CATALOG_JWT_AUDIENCE: {{ .Values.config.jwt.audience | quote }}
{{- with .Values.config.jwt.jwksUrl }}
CATALOG_JWT_JWKS_URL: {{ . | quote }}
{{- end }}
{{- if .Values.config.jwt.publicKeySecretKey }}
CATALOG_JWT_PUBLIC_KEY_FILE: /etc/catalog/jwt/public.pem
{{- end }}
{{- if include "catalog.sqlite" . }}
DATABASE_URL: sqlite:///var/lib/catalog/catalog.sqlite3
{{- end }}
OTEL_SERVICE_NAME: {{ include "catalog.name" . | quote }}
{{- with .Values.config.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- range $name, $value := .Values.config.extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* A container's environment: the settings (from the ConfigMap, or inline for hooks that run
before the ConfigMap exists) plus the secret parts. Called with (dict "root" $ "inline" bool). */}}
{{- define "catalog.env" -}}
{{- $root := .root }}
{{- $env := list }}
{{- if .inline }}
{{- range $name, $value := include "catalog.configData" $root | fromYaml }}
{{- $env = append $env (dict "name" $name "value" (toString $value)) }}
{{- end }}
{{- end }}
{{- if not (include "catalog.sqlite" $root) }}
{{- $env = append $env (dict "name" "DATABASE_URL" "valueFrom" (dict "secretKeyRef" (dict "name" $root.Values.existingSecret "key" "DATABASE_URL"))) }}
{{- end }}
{{- if $root.Values.config.jwt.devOnlySecret }}
{{- $env = append $env (dict "name" "CATALOG_JWT_SECRET" "valueFrom" (dict "secretKeyRef" (dict "name" (include "catalog.devSecretName" $root) "key" "CATALOG_JWT_SECRET"))) }}
{{- end }}
{{- if not .inline }}
envFrom:
  - configMapRef:
      name: {{ include "catalog.fullname" $root }}
{{- end }}
{{- with $env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The PEM public key from existingSecret, when configured. */}}
{{- define "catalog.jwtKeyVolume" -}}
{{- if .Values.config.jwt.publicKeySecretKey }}
- name: jwt-public-key
  secret:
    secretName: {{ .Values.existingSecret }}
    items:
      - {key: {{ .Values.config.jwt.publicKeySecretKey }}, path: public.pem}
{{- end }}
{{- end }}

{{/* Settings the schema cannot express; each failure names the values and the fix. */}}
{{- define "catalog.validate" -}}
{{- $budget := add .Values.preStopSleepSeconds .Values.config.drainSeconds .Values.config.gracefulShutdownSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $budget) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + config.drainSeconds + config.gracefulShutdownSeconds (%v), or the kubelet kills requests in flight" .Values.terminationGracePeriodSeconds $budget) }}
{{- end }}
{{- if and (include "catalog.sqlite" .) (gt (int (include "catalog.minReplicas" .)) 1) }}
{{- fail "database.engine sqlite allows one replica: set replicaCount: 1 and autoscaling.enabled: false, or use database.engine: postgresql" }}
{{- end }}
{{- if and (not (include "catalog.sqlite" .)) (not .Values.existingSecret) }}
{{- fail "database.engine postgresql reads DATABASE_URL from a Secret: set existingSecret to the name of a Secret (never in git) with key DATABASE_URL" }}
{{- end }}
{{- if and (not (include "catalog.sqlite" .)) (not .Values.database.networkPeers) }}
{{- fail "database.engine postgresql needs database.networkPeers (where PostgreSQL runs), or the NetworkPolicy would allow egress anywhere" }}
{{- end }}
{{- if and .Values.config.jwt.publicKeySecretKey (not .Values.existingSecret) }}
{{- fail "config.jwt.publicKeySecretKey names a key of existingSecret: set existingSecret too" }}
{{- end }}
{{- end }}

{{/* Egress rules the server and the migration both need: DNS, and PostgreSQL when used. */}}
{{- define "catalog.egressDnsAndDatabase" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
{{- if not (include "catalog.sqlite" .) }}
- to:
    {{- toYaml .Values.database.networkPeers | nindent 4 }}
  ports: [{port: {{ .Values.database.port }}, protocol: TCP}]
{{- end }}
{{- end }}

{{/* Migration hooks run before the release's own objects exist, so they bring what they need. */}}
{{- define "catalog.migrationHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
argocd.argoproj.io/hook: PreSync
argocd.argoproj.io/sync-wave: {{ . | quote }}
argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded
{{- end }}
