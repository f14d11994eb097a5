{{/* Validation: what the values imply, and the combinations values.schema.json cannot refuse. */}}

{{/* "true" when the database is SQLite (a file on the pod's volume), else empty. */}}
{{- define "catalog.sqlite" -}}
{{- if eq .Values.database.engine "sqlite" }}true{{ end }}
{{- end }}

{{/* Replicas the release runs at rest: the HPA's floor when autoscaling. */}}
{{- define "catalog.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Fails the render on settings the schema cannot express; each failure names the values and the fix. */}}
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
