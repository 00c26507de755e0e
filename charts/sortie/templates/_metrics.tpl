{{/* Whether Sortie serves /metrics: asked for, or needed by the ServiceMonitor. */}}
{{- define "sortie.metricsEnabled" -}}
{{- if or .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{/* The Secret holding the scrapers' token (key metrics-token). */}}
{{- define "sortie.metricsSecretName" -}}
{{- default (printf "%s-metrics" (include "sortie.fullname" .)) .Values.metrics.existingSecret }}
{{- end }}
