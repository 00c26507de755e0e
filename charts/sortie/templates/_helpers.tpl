{{/*
Names. Kept within 63 characters (the DNS label limit for Service names and labels).
*/}}
{{- define "sortie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it already contains the chart name
(`helm install sortie charts/sortie` gives plain "sortie", as the docs show).
*/}}
{{- define "sortie.fullname" -}}
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

{{- define "sortie.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of Sortie's own pods. Stable across upgrades (a Deployment's selector
is immutable), so no version here.
*/}}
{{- define "sortie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sortie.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Common labels. Note managed-by is Helm here: the value `sortie` is reserved for the
session pods Sortie creates, and Sortie deletes such pods when it has no session for them.
*/}}
{{- define "sortie.labels" -}}
helm.sh/chart: {{ include "sortie.chart" . }}
{{ include "sortie.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sortie
{{- end }}

{{/*
Labels for objects that are not part of Sortie's server (policies, quota, test pod):
same set, different component.
*/}}
{{- define "sortie.labelsFor" -}}
helm.sh/chart: {{ include "sortie.chart" .root }}
app.kubernetes.io/name: {{ include "sortie.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: sortie
{{- end }}

{{/*
Labels Sortie puts on session pods (the contract with the runner).
*/}}
{{- define "sortie.sessionSelectorLabels" -}}
app.kubernetes.io/managed-by: sortie
app.kubernetes.io/component: session
{{- end }}

{{- define "sortie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sortie.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespace of session pods: the release namespace unless sessionNamespace names another
(which must already exist).
*/}}
{{- define "sortie.sessionNamespace" -}}
{{- default .Release.Namespace .Values.sessionNamespace }}
{{- end }}

{{- define "sortie.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Name of the ConfigMap holding apps.json: the chart's own, or one the operator manages.
*/}}
{{- define "sortie.appsConfigMapName" -}}
{{- default (printf "%s-apps" (include "sortie.fullname" .)) .Values.existingAppsConfigMap }}
{{- end }}

{{/*
Name of the environment variable the kubelet sets (service links) to the Service's
ClusterIP in pods of the same namespace: the test pod reaches Sortie without cluster DNS.
*/}}
{{- define "sortie.serviceHostEnv" -}}
{{- printf "%s_SERVICE_HOST" (include "sortie.fullname" . | upper | replace "-" "_") }}
{{- end }}

{{/*
Name of the Secret holding the admin password (and optional JWT / OIDC secrets).
*/}}
{{- define "sortie.authSecretName" -}}
{{- default (printf "%s-auth" (include "sortie.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/*
SORTIE_PUBLIC_URL: as given, else the Ingress URL when there is one.
*/}}
{{- define "sortie.publicUrl" -}}
{{- if .Values.auth.publicUrl }}
{{- .Values.auth.publicUrl }}
{{- else if .Values.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tlsSecretName))) .Values.ingress.host }}
{{- end }}
{{- end }}

{{/*
Whether recordings get a claim of their own: with PostgreSQL only (with SQLite they are on the
data volume), when recordings.persistence.enabled. Empty when not.
*/}}
{{- define "sortie.recordingsVolume" -}}
{{- if and .Values.database.existingSecret .Values.recordings.persistence.enabled -}}true{{- end -}}
{{- end }}
