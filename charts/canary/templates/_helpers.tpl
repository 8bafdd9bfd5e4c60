{{/*
Names are fixed, not prefixed with the release name: the ClusterRoles are the ones the
README documents (canary-view, canary-steer, canary-edit) and the admission policy names
the controller's ServiceAccount. So there is one canary release per cluster.
*/}}

{{- define "canary.labels" -}}
app.kubernetes.io/name: canary
app.kubernetes.io/part-of: canary
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "canary.controllerLabels" -}}
{{ include "canary.labels" . }}
app.kubernetes.io/component: controller
app.kubernetes.io/version: {{ include "canary.version" . | quote }}
{{- end }}

{{- define "canary.selectorLabels" -}}
app.kubernetes.io/name: canary
app.kubernetes.io/component: controller
{{- end }}

{{- define "canary.version" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The username the API server gives the controller's ServiceAccount. */}}
{{- define "canary.controllerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:canary-controller
{{- end }}

{{- define "canary.leaderElection" -}}
{{- $mode := toString .Values.leaderElection -}}
{{- if eq $mode "auto" -}}
{{ gt (int .Values.replicas) 1 }}
{{- else if has $mode (list "true" "false") -}}
{{ $mode }}
{{- else -}}
{{ fail (printf "leaderElection must be auto, true or false, not %q" $mode) }}
{{- end -}}
{{- end }}
