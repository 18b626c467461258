{{/* Names and labels shared by every object. */}}
{{- define "netweave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "netweave.fullname" -}}
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

{{- define "netweave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netweave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "netweave.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "netweave.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "netweave.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "netweave.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for values given inline (store URL, API token). */}}
{{- define "netweave.secretName" -}}
{{- include "netweave.fullname" . }}
{{- end }}

{{- define "netweave.storeSecretName" -}}
{{- default (include "netweave.secretName" .) .Values.postgresql.existingSecret }}
{{- end }}

{{- define "netweave.tokenSecretName" -}}
{{- default (include "netweave.secretName" .) .Values.apiToken.existingSecret }}
{{- end }}

{{- define "netweave.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
