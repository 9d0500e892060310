{{- /*
Web configuration (TLS and basic auth) of the parts' HTTP servers, in the format Prometheus'
exporters share (tls_server_config, basic_auth_users with bcrypt hashes). The file and whatever
it names (certificate, key) come from a Secret the operator made, mounted read-only at
/etc/poolwatch/web: no password, hash or key sits in the values. The chart cannot read that
Secret, so `tls` says whether the file turns TLS on (probes, scrapes and the chart's own clients
then use HTTPS) and `scrape` how Prometheus authenticates.
*/}}

{{- define "poolwatch.partKey" -}}
{{- index (dict "node-exporter" "nodeExporter" "cluster-exporter" "clusterExporter" "rules" "rules" "alerts" "alerts" "controller" "controller" "api" "api") . -}}
{{- end }}

{{- /* The web config of a part (dict root, component) as JSON: webConfig, with each key the
part's own webConfig gives put over it (existingSecret: "" serves that part without one). */}}
{{- define "poolwatch.web" -}}
{{- $key := include "poolwatch.partKey" .component -}}
{{- $global := .root.Values.webConfig -}}
{{- if and $global.tls (not $global.existingSecret) -}}
{{- fail "webConfig.tls: TLS needs the web config Secret (webConfig.existingSecret)" -}}
{{- end -}}
{{- $own := (index .root.Values $key).webConfig | default dict -}}
{{- $w := omit (deepCopy $global) "clientCA" -}}
{{- range $k, $v := $own -}}
{{- $_ := set $w $k $v -}}
{{- end -}}
{{- /* a part that names no Secret (existingSecret: "") opts out, whatever tls it inherits */}}
{{- if and $own.tls (not $w.existingSecret) -}}
{{- fail (printf "%s.webConfig.tls: TLS needs the web config Secret (%s.webConfig.existingSecret or webConfig.existingSecret)" $key $key) -}}
{{- end -}}
{{- toJson $w -}}
{{- end }}

{{- define "poolwatch.webTLS" -}}
{{- $w := include "poolwatch.web" . | fromJson -}}
{{- if and $w.existingSecret $w.tls }}true{{ end -}}
{{- end }}

{{- /* http or https for a part's Service (dict root, component), as its clients must speak. */}}
{{- define "poolwatch.scheme" -}}
{{- ternary "https" "http" (eq (include "poolwatch.webTLS" .) "true") -}}
{{- end }}

{{- /* The path of the web config file in the container ("" when the part has none). */}}
{{- define "poolwatch.webConfigFile" -}}
{{- $w := include "poolwatch.web" . | fromJson -}}
{{- if $w.existingSecret }}{{ printf "/etc/poolwatch/web/%s" $w.file }}{{ end -}}
{{- end }}

{{- define "poolwatch.webMount" -}}
{{- if (include "poolwatch.web" . | fromJson).existingSecret }}
- {name: web-config, mountPath: /etc/poolwatch/web, readOnly: true}
{{- end }}
{{- end }}

{{- define "poolwatch.webVolume" -}}
{{- $w := include "poolwatch.web" . | fromJson -}}
{{- if $w.existingSecret }}
- name: web-config
  secret:
    secretName: {{ $w.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- /* The ServiceMonitor/PodMonitor endpoint fields that match the part's web config. The alerts
receiver's monitor sends its bearer token (set by the caller; the operator allows one of the two),
though the receiver takes the web config's users as well. */}}
{{- define "poolwatch.scrapeAuth" -}}
{{- $w := include "poolwatch.web" . | fromJson -}}
{{- if $w.existingSecret }}
{{- if $w.tls }}
scheme: https
{{- with $w.scrape.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if and $w.scrape.basicAuth (ne .component "alerts") }}
basicAuth:
  {{- toYaml $w.scrape.basicAuth | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{- /* The CA bundle the rule engine and the controller trust when the receiver or the
controller serves TLS (dict root, needs: list of components the client calls). Fails without
webConfig.clientCA: the client could not check the server's certificate. */}}
{{- define "poolwatch.clientCA" -}}
{{- $tls := list -}}
{{- range .needs -}}
{{- if eq (include "poolwatch.webTLS" (dict "root" $.root "component" .)) "true" }}{{ $tls = append $tls . }}{{ end -}}
{{- end -}}
{{- if $tls -}}
{{- $ca := $.root.Values.webConfig.clientCA | default dict -}}
{{- if not $ca.name -}}
{{- fail (printf "webConfig.clientCA.name: %s serve(s) TLS, so the chart's own clients need the CA that signed their certificates (a Secret name and key)" (join ", " $tls)) -}}
{{- end -}}
{{- toJson $ca -}}
{{- end -}}
{{- end }}
