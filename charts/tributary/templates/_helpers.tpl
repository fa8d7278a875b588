{{- define "tributary.name" -}}
{{- printf "%s-tributary-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tributary.labels" -}}
app.kubernetes.io/name: tributary-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tributary
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
