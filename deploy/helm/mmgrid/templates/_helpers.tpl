{{/* The chart's name, or nameOverride. */}}
{{- define "mmgrid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every resource name: fullnameOverride, else "<release>-<chart>" (just the release
when it already contains the chart's name). Kept to 50 characters so that suffixes such as
"-coordinator" and "-dashboard-<name>" stay within the 63 that names allow.
*/}}
{{- define "mmgrid.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mmgrid.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource; pass (dict "ctx" $ "component" "coordinator"). */}}
{{- define "mmgrid.labels" -}}
helm.sh/chart: {{ include "mmgrid.chart" .ctx }}
{{ include "mmgrid.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mmgrid
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select a component's pods; pass (dict "ctx" $ "component" "coordinator"). */}}
{{- define "mmgrid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mmgrid.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* "repository:tag", the tag defaulting to the chart's appVersion; pass (dict "ctx" $ "image" .Values.x.image). */}}
{{- define "mmgrid.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "mmgrid.coordinatorName" -}}
{{- printf "%s-coordinator" (include "mmgrid.fullname" .) -}}
{{- end -}}

{{- define "mmgrid.workerName" -}}
{{- printf "%s-worker" (include "mmgrid.fullname" .) -}}
{{- end -}}

{{- define "mmgrid.redisName" -}}
{{- printf "%s-redis" (include "mmgrid.fullname" .) -}}
{{- end -}}

{{/* The Secret the chart writes (external Redis URL, S3 URL, worker token). */}}
{{- define "mmgrid.secretName" -}}
{{- printf "%s-secrets" (include "mmgrid.fullname" .) -}}
{{- end -}}

{{- define "mmgrid.blobClaimName" -}}
{{- default (printf "%s-blobs" (include "mmgrid.fullname" .)) .Values.blobStore.pvc.existingClaim -}}
{{- end -}}

{{/* Whether blobs go to an S3-compatible bucket ("true" or ""). */}}
{{- define "mmgrid.s3" -}}
{{- if or .Values.blobStore.s3Url .Values.blobStore.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The REDIS_URL environment variable of the coordinators. */}}
{{- define "mmgrid.redisUrlEnv" -}}
- name: REDIS_URL
{{- if .Values.redis.internal }}
  value: {{ printf "redis://%s:6379" (include "mmgrid.redisName" .) | quote }}
{{- else if .Values.redis.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
  valueFrom:
    secretKeyRef:
      name: {{ include "mmgrid.secretName" . }}
      key: redis-url
{{- else }}
{{- fail "redis.internal is false: set redis.url (or redis.existingSecret) to the Redis the coordinators use" }}
{{- end }}
{{- end -}}

{{/* The coordinators' address for the workers: worker.coordinator, else the Service. */}}
{{- define "mmgrid.coordinatorAddress" -}}
{{- if .Values.worker.coordinator -}}
{{- .Values.worker.coordinator -}}
{{- else -}}
{{- printf "%s.%s.svc:%d" (include "mmgrid.coordinatorName" .) .Release.Namespace (int .Values.coordinator.grpcPort) -}}
{{- end -}}
{{- end -}}
