{{/* Pod plumbing: security contexts, settings and environment, volumes, network rules and hook
annotations that the server, the migration and the test pods share. */}}

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

{{/* The image's numeric user and group (10001, made by apps/catalog/Dockerfile). */}}
{{- define "catalog.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The service's plain settings, NAME: "value" lines (the ConfigMap's data). */}}
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

{{/* Migration hooks run before the release's own objects exist, so they bring what they need;
called with the hook weight (the ServiceAccount and NetworkPolicy before the Job). */}}
{{- define "catalog.migrationHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
argocd.argoproj.io/hook: PreSync
argocd.argoproj.io/sync-wave: {{ . | quote }}
argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded
{{- end }}

{{/* Where the release's pods may run: every pod (server, migration Job, test) gets the same
nodeSelector, affinity and tolerations, so a migration or test is never left Pending on, or sent
to, nodes the server cannot use. */}}
{{- define "catalog.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
