{{/*
Names, labels and the pieces every workload shares. Each part is a "component"
(node-exporter, cluster-exporter, rules, alerts, controller, api): it names its objects
(<fullname>-<component>) and its selector, so the parts never select each other's pods.
*/}}

{{- define "poolwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-poolwatch, or the release name when it already contains the chart name. */}}
{{- define "poolwatch.fullname" -}}
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

{{- define "poolwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <fullname>-<component>, kept within 63 characters. Call with (dict "root" $ "component" "x"). */}}
{{- define "poolwatch.componentName" -}}
{{- printf "%s-%s" (include "poolwatch.fullname" .root | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: immutable on a Deployment/DaemonSet, so name, instance and component only. */}}
{{- define "poolwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "poolwatch.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "poolwatch.labels" -}}
helm.sh/chart: {{ include "poolwatch.chart" .root }}
{{ include "poolwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: poolwatch
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels for monitoring.coreos.com objects: the standard set plus monitoring.labels. */}}
{{- define "poolwatch.monitorLabels" -}}
{{ include "poolwatch.labels" . }}
{{- with .root.Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "poolwatch.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag | toString) }}
{{- end }}
{{- end }}

{{/* The pod security context: global merged with the part's own. (dict "root" $ "part" .Values.x) */}}
{{- define "poolwatch.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.podSecurityContext) (.part.podSecurityContext | default dict)) }}
{{- end }}

{{- define "poolwatch.securityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.securityContext) (.part.securityContext | default dict)) }}
{{- end }}

{{/* /healthz probes on the named port "http" (open without credentials; HTTPS when the
part's web config turns TLS on: the kubelet does not check the certificate). */}}
{{- define "poolwatch.probes" -}}
{{- $scheme := ternary ", scheme: HTTPS" "" (eq (include "poolwatch.scheme" .) "https") -}}
livenessProbe:
  httpGet: {path: /healthz, port: http{{ $scheme }}}
  initialDelaySeconds: 10
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /healthz, port: http{{ $scheme }}}
  initialDelaySeconds: 3
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{/* Scheduling and pod-level fields every Deployment shares. (dict "root" $ "part" .Values.x) */}}
{{- define "poolwatch.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with get .part "nodeSelector" }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with get .part "tolerations" }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with get .part "affinity" }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "poolwatch.podSecurityContext" . | nindent 2 }}
{{- end }}

{{/* The common container head: image, log level, security context, resources. */}}
{{- define "poolwatch.containerCommon" -}}
image: {{ include "poolwatch.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- include "poolwatch.securityContext" . | nindent 2 }}
resources:
  {{- toYaml .part.resources | nindent 2 }}
{{- end }}

{{- define "poolwatch.authSecretName" -}}
{{- default (include "poolwatch.componentName" (dict "root" . "component" "auth")) .Values.auth.existingSecret }}
{{- end }}

{{- define "poolwatch.targetsSecretName" -}}
{{- default (include "poolwatch.componentName" (dict "root" . "component" "targets")) .Values.alerts.targetsSecret.existingSecret }}
{{- end }}

{{/* In-cluster URL of a part's Service. (dict "root" $ "component" "alerts" "port" 9481) */}}
{{- define "poolwatch.serviceUrl" -}}
{{- printf "%s://%s.%s.svc:%d" (include "poolwatch.scheme" .) (include "poolwatch.componentName" .) .root.Release.Namespace (int .port) }}
{{- end }}

{{/* The Prometheus URL, required by the parts that query it. */}}
{{- define "poolwatch.prometheusUrl" -}}
{{- required "prometheusUrl is required by the rule engine and the pool API" .Values.prometheusUrl }}
{{- end }}

{{/* A data volume: a PersistentVolumeClaim when persistence is on, else an emptyDir. */}}
{{- define "poolwatch.dataVolume" -}}
- name: data
{{- if .part.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (include "poolwatch.componentName" .) .part.persistence.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: 256Mi
{{- end }}
{{- end }}

{{/* What watching the cluster takes (poolwatch/cluster/kubernetes/api.py RESOURCES): read-only. The
kubeflow and volcano groups are optional there; granting them costs nothing where absent. */}}
{{- define "poolwatch.clusterReadRules" -}}
- apiGroups: [""]
  resources: [nodes, pods, resourcequotas, events]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch]
- apiGroups: [kubeflow.org]
  resources: [pytorchjobs, tfjobs, mpijobs]
  verbs: [get, list, watch]
- apiGroups: [batch.volcano.sh]
  resources: [jobs]
  verbs: [get, list, watch]
- apiGroups: [scheduling.volcano.sh]
  resources: [queues]
  verbs: [get, list, watch]
- apiGroups: [scheduling.sigs.k8s.io]
  resources: [elasticquotatrees, elasticquotas]
  verbs: [get, list, watch]
{{- end }}

{{/* A ServiceAccount, and when rules are given a ClusterRole + ClusterRoleBinding.
(dict "root" $ "component" "x" "rules" "<yaml list>" "automount" bool) */}}
{{- define "poolwatch.rbac" -}}
{{- $root := .root }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "poolwatch.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "poolwatch.labels" . | nindent 4 }}
automountServiceAccountToken: {{ .automount }}
{{- if .rules }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "poolwatch.componentName" . }}
  labels:
    {{- include "poolwatch.labels" . | nindent 4 }}
rules:
  {{- .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ include "poolwatch.componentName" . }}
  labels:
    {{- include "poolwatch.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ include "poolwatch.componentName" . }}
subjects:
  - kind: ServiceAccount
    name: {{ include "poolwatch.componentName" . }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end }}

{{/* The parts that run as Deployments with a Service: component -> values key. */}}
{{- define "poolwatch.serviceParts" -}}
cluster-exporter: clusterExporter
rules: rules
alerts: alerts
controller: controller
api: api
{{- end }}

{{/* The Deployment parts that serve Prometheus metrics at /metrics (the pool API has none). */}}
{{- define "poolwatch.monitoredParts" -}}
cluster-exporter: clusterExporter
rules: rules
alerts: alerts
controller: controller
{{- end }}
