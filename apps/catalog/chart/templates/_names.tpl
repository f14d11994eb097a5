{{/* Names and labels: what every object of the release is called and how it is labelled. */}}

{{/* The chart's name (nameOverride wins), cut to a label value's 63 characters. */}}
{{- define "catalog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's object name: <release>-<name>, or the release alone when it holds the name. */}}
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

{{/* The ServiceAccount the server and the test pod run as. */}}
{{- define "catalog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "catalog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart-made Secret holding the development-only JWT secret. */}}
{{- define "catalog.devSecretName" -}}
{{ include "catalog.fullname" . }}-dev-only-jwt
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

{{/* The labels that select the release's pods; never change them on a live release. */}}
{{- define "catalog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "catalog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels every object of the release carries. */}}
{{- define "catalog.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "catalog.selectorLabels" . }}
app.kubernetes.io/version: {{ include "catalog.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: catalog
{{- end }}

{{/* The labels of one component's objects (server, migrate, test), or with "selector" true only
those that select its pods, which `component` keeps apart from the other components' pods.
Called with (dict "root" $ "component" "server") or (dict "root" $ "component" "server" "selector" true). */}}
{{- define "catalog.componentLabels" -}}
{{- if .selector }}
{{- include "catalog.selectorLabels" .root }}
{{- else }}
{{- include "catalog.labels" .root }}
{{- end }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
