{{- /*
The shipped rules compiled in the chart, with `rules.overrides` applied: the same steps as
`poolwatch rules compile --overrides` (rules/overrides.py, rules/compile.py), read from
files/rule-model/rules.json (the rules before compilation, written by helm/sync.py). The
PrometheusRule and the rules ConfigMap are built from "poolwatch.rules.groups", so Prometheus
evaluates the rules exactly as the rule engine does with the same overrides file.

An override the chart cannot apply (an unknown rule or field, a wrong type, a clear threshold on
the wrong side) stops the release with `fail`, naming the key: the engine would refuse the same
file, and Prometheus must never silently keep the shipped rule.
*/}}

{{- /* A number as the compiler writes it into PromQL: an integral value without a decimal
point, any other in its shortest form, never in exponent notation from 1e6 up. */}}
{{- define "poolwatch.rules.num" -}}
{{- $v := float64 . -}}
{{- if eq $v 0.0 -}}
0
{{- else if eq $v (floor $v) -}}
{{- printf "%.0f" $v -}}
{{- else -}}
{{- $s := printf "%v" $v -}}
{{- if contains "e+" $s -}}
{{- $sign := ternary "-" "" (hasPrefix "-" $s) -}}
{{- $parts := splitList "e+" (trimPrefix "-" $s) -}}
{{- $digits := replace "." "" (index $parts 0) -}}
{{- $point := int (add1 (int (trimPrefix "0" (index $parts 1)))) -}}
{{- printf "%s%s.%s" $sign (substr 0 $point $digits) (substr $point (len $digits) $digits) -}}
{{- else -}}
{{- $s -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- /* Seconds -> the shortest Prometheus duration (90 -> 1m30s), as format_duration. */}}
{{- define "poolwatch.rules.duration" -}}
{{- $ms := int64 (round (mulf (float64 .) 1000.0) 0) -}}
{{- $out := "" -}}
{{- range list (list "d" 86400000) (list "h" 3600000) (list "m" 60000) (list "s" 1000) -}}
{{- $size := int64 (index . 1) -}}
{{- if ge $ms $size -}}
{{- $out = printf "%s%d%s" $out (div $ms $size) (index . 0) -}}
{{- $ms = mod $ms $size -}}
{{- end -}}
{{- end -}}
{{- if gt $ms 0 }}{{ $out = printf "%s%dms" $out $ms }}{{ end -}}
{{- default "0s" $out -}}
{{- end }}

{{- /* An annotation text: its literal pieces, and $threshold / $clear filled in (plain: as Go
prints a float64; `| percent`: 0.9 -> 90), as expand_rule does. */}}
{{- define "poolwatch.rules.text" -}}
{{- $values := .values -}}
{{- range .segments -}}
{{- if hasKey . "text" -}}
{{- .text -}}
{{- else -}}
{{- $v := index $values .var -}}
{{- if kindIs "invalid" $v -}}
{{- .raw -}}
{{- else if eq .pipe "percent" -}}
{{- printf "%.6g" (round (mulf (float64 $v) 100.0) 9) -}}
{{- else -}}
{{- printf "%v" (float64 $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- define "poolwatch.rules.isNumber" -}}
{{- if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) (kindIs "float32" .) (kindIs "int32" .) (kindIs "uint64" .) }}true{{ end -}}
{{- end }}

{{- /* The groups as JSON ({"groups": [...]}), overrides applied, disabled alerts and empty
groups left out, monitoring.rules.additionalLabels added under the rules' own labels. */}}
{{- define "poolwatch.rules.groups" -}}
{{- $model := .Files.Get "files/rule-model/rules.json" | fromJson -}}
{{- $overrides := .Values.rules.overrides | default dict -}}
{{- $mon := .Values.monitoring.rules -}}
{{- $fields := list "threshold" "clear" "for" "periods" "severity" "labels" "actions" "disabled" -}}
{{- $severities := list "info" "suggestion" "warning" "major" "critical" -}}
{{- $reserved := list "alertname" "alertstate" "severity" "seed_ids" -}}
{{- $known := dict -}}
{{- range $model.groups -}}{{- range .rules -}}{{- $_ := set $known .name true -}}{{- end -}}{{- end -}}
{{- range $name := keys $overrides | sortAlpha -}}
{{- if not (hasKey $known $name) -}}
{{- fail (printf "rules.overrides.%s: no shipped rule has this name (see docs/rules.md for the rule names)" $name) -}}
{{- end -}}
{{- $o := index $overrides $name -}}
{{- if not (or (kindIs "invalid" $o) (kindIs "map" $o)) -}}
{{- fail (printf "rules.overrides.%s: expected a map of fields (threshold, clear, for, periods, severity, labels, actions, disabled), got %s" $name (kindOf $o)) -}}
{{- end -}}
{{- range $field := keys ($o | default dict) | sortAlpha -}}
{{- if not (has $field $fields) -}}
{{- fail (printf "rules.overrides.%s.%s: unknown field; an override may set %s" $name $field (join ", " $fields)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $groups := list -}}
{{- range $g := $model.groups -}}
{{- $kept := list -}}
{{- range $r := $g.rules -}}
{{- $o := index $overrides $r.name | default dict -}}
{{- $key := printf "rules.overrides.%s" $r.name -}}
{{- $disabled := false -}}
{{- if hasKey $o "disabled" -}}
{{- if not (kindIs "bool" $o.disabled) -}}
{{- fail (printf "%s.disabled: expected true or false, got %v" $key $o.disabled) -}}
{{- end -}}
{{- $disabled = $o.disabled -}}
{{- end -}}
{{- $threshold := $r.threshold -}}
{{- $clear := $r.clear -}}
{{- $for := $r.for -}}
{{- $periods := $r.periods -}}
{{- $window := $r.window -}}
{{- $severity := $r.severity -}}
{{- $labels := deepCopy ($r.labels | default dict) -}}
{{- $actions := $r.actions -}}
{{- range $field := list "threshold" "clear" -}}
{{- $v := index $o $field -}}
{{- if not (kindIs "invalid" $v) -}}
{{- if not (include "poolwatch.rules.isNumber" $v) -}}
{{- fail (printf "%s.%s: expected a number, got %s %v (helm --set passes decimals as text: use --set-json or a values file)" $key $field (kindOf $v) $v) -}}
{{- end -}}
{{- if eq $field "threshold" }}{{ $threshold = float64 $v }}{{ else }}{{ $clear = float64 $v }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $newFor := index $o "for" -}}
{{- $newPeriods := $o.periods -}}
{{- if not (kindIs "invalid" $newFor) -}}
{{- if and (include "poolwatch.rules.isNumber" $newFor) (eq (float64 $newFor) 0.0) -}}
{{- $newFor = "0" -}}
{{- end -}}
{{- if not (and (kindIs "string" $newFor) $newFor (regexMatch "^(?:0|(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?)$" $newFor)) -}}
{{- fail (printf "%s.for: expected a Prometheus duration such as 0s, 30s, 2m or 1h30m, got %v" $key $newFor) -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "invalid" $newPeriods) -}}
{{- if not (and (include "poolwatch.rules.isNumber" $newPeriods) (eq (float64 $newPeriods) (floor $newPeriods)) (ge (float64 $newPeriods) 1.0)) -}}
{{- fail (printf "%s.periods: expected a whole number of evaluations, 1 or more, got %v" $key $newPeriods) -}}
{{- end -}}
{{- end -}}
{{- if not (and (kindIs "invalid" $newFor) (kindIs "invalid" $newPeriods)) -}}
{{- /* a new timing replaces the rule's own (for, periods or window); `for` wins over periods */}}
{{- $window = dict -}}
{{- $for = ternary $newFor nil (not (kindIs "invalid" $newFor)) -}}
{{- $periods = ternary nil $newPeriods (not (kindIs "invalid" $newFor)) -}}
{{- end -}}
{{- with $o.severity -}}
{{- if not (has . $severities) -}}
{{- fail (printf "%s.severity: expected one of %s, got %v" $key (join ", " $severities) .) -}}
{{- end -}}
{{- $severity = . -}}
{{- end -}}
{{- if hasKey $o "labels" -}}
{{- if not (kindIs "map" ($o.labels | default dict)) -}}
{{- fail (printf "%s.labels: expected a map of label name to value, got %v" $key $o.labels) -}}
{{- end -}}
{{- range $l := keys ($o.labels | default dict) | sortAlpha -}}
{{- $lv := index $o.labels $l -}}
{{- if not (regexMatch "^[a-zA-Z_][a-zA-Z0-9_]*$" $l) -}}
{{- fail (printf "%s.labels.%s: not a valid label name" $key $l) -}}
{{- end -}}
{{- if has $l $reserved -}}
{{- fail (printf "%s.labels.%s: this label is set by the rule compiler" $key $l) -}}
{{- end -}}
{{- if not (kindIs "string" $lv) -}}
{{- fail (printf "%s.labels.%s: expected a string (quote it), got %v" $key $l $lv) -}}
{{- end -}}
{{- $_ := set $labels $l $lv -}}
{{- end -}}
{{- end -}}
{{- if hasKey $o "actions" -}}
{{- if not (kindIs "slice" $o.actions) -}}
{{- fail (printf "%s.actions: expected a list such as [notify, replace, {isolate: A050104}], got %v" $key $o.actions) -}}
{{- end -}}
{{- $words := list -}}
{{- range $i, $a := $o.actions -}}
{{- if and (kindIs "string" $a) (has $a (list "notify" "replace" "restart-job")) -}}
{{- $words = append $words $a -}}
{{- else if and (kindIs "map" $a) (eq (len $a) 1) (hasKey $a "isolate") -}}
{{- if not (has $a.isolate $model.faultCodes) -}}
{{- fail (printf "%s.actions[%d].isolate: unknown fault code %v (known: %s)" $key $i $a.isolate (join ", " $model.faultCodes)) -}}
{{- end -}}
{{- $words = append $words (printf "isolate:%s" $a.isolate) -}}
{{- else -}}
{{- fail (printf "%s.actions[%d]: expected notify, replace, restart-job or {isolate: CODE}, got %v" $key $i $a) -}}
{{- end -}}
{{- end -}}
{{- $actions = join " " $words -}}
{{- end -}}
{{- if not (kindIs "invalid" $clear) -}}
{{- if or $window (has $r.op (list "==" "!=")) -}}
{{- fail (printf "%s.clear: clear (hysteresis) needs op > >= < <= and for or periods; rule %s compares with %s%s" $key $r.name $r.op (ternary " over a window" "" (not (empty $window)))) -}}
{{- end -}}
{{- if and (has $r.op (list ">" ">=")) (not (lt (float64 $clear) (float64 $threshold))) -}}
{{- fail (printf "%s.clear: must be below the threshold (%v) for op %s, got %v" $key $threshold $r.op $clear) -}}
{{- end -}}
{{- if and (has $r.op (list "<" "<=")) (not (gt (float64 $clear) (float64 $threshold))) -}}
{{- fail (printf "%s.clear: must be above the threshold (%v) for op %s, got %v" $key $threshold $r.op $clear) -}}
{{- end -}}
{{- end -}}
{{- if not (or $disabled (index ($mon.disabled | default dict) $r.name)) -}}
{{- $num := include "poolwatch.rules.num" $threshold -}}
{{- $expr := "" -}}
{{- if $window -}}
{{- $expr = printf "avg_over_time((%s %s bool %s)[%s:%s]) * 100 > %s" $r.expr $r.op $num $window.range $window.step (include "poolwatch.rules.num" $window.percent) -}}
{{- else -}}
{{- $fire := printf "(%s) %s %s" $r.expr $r.op $num -}}
{{- if kindIs "invalid" $clear -}}
{{- $expr = $fire -}}
{{- else -}}
{{- $ignored := concat (list "alertname" "alertstate" "severity" "seed_ids") (keys (merge (dict) $labels ($mon.additionalLabels | default dict)) | sortAlpha) -}}
{{- $hold := printf "(%s) %s %s" $r.expr $r.op (include "poolwatch.rules.num" $clear) -}}
{{- $firing := printf "ALERTS{alertname=%s, alertstate=\"firing\"}" (toJson $r.name) -}}
{{- $expr = printf "(%s) or ((%s) and ignoring(%s) %s)" $fire $hold (join ", " $ignored) $firing -}}
{{- end -}}
{{- end -}}
{{- $alert := dict "alert" $r.name "expr" $expr -}}
{{- if not (kindIs "invalid" $for) -}}
{{- if regexMatch "[1-9]" $for }}{{ $_ := set $alert "for" $for }}{{ end -}}
{{- else if not (kindIs "invalid" $periods) -}}
{{- if gt (float64 $periods) 1.0 -}}
{{- $_ := set $alert "for" (include "poolwatch.rules.duration" (mulf (subf (float64 $periods) 1.0) (float64 $g.intervalSeconds))) -}}
{{- end -}}
{{- end -}}
{{- $out := merge (dict "severity" $severity) $labels (deepCopy ($mon.additionalLabels | default dict)) -}}
{{- if $r.seed_ids }}{{ $_ := set $out "seed_ids" $r.seed_ids }}{{ end -}}
{{- $_ := set $alert "labels" $out -}}
{{- $values := dict "threshold" $threshold "clear" $clear -}}
{{- $runbook := $r.runbook -}}
{{- if and $mon.runbookBaseUrl (not (regexMatch "^[a-zA-Z][a-zA-Z0-9+.-]*:" $runbook)) -}}
{{- $runbook = printf "%s/%s" (trimSuffix "/" $mon.runbookBaseUrl) (trimPrefix "/" $runbook) -}}
{{- end -}}
{{- $_ := set $alert "annotations" (dict
  "summary" (include "poolwatch.rules.text" (dict "segments" $r.summary "values" $values))
  "description" (include "poolwatch.rules.text" (dict "segments" $r.description "values" $values))
  "runbook_url" $runbook
  "actions" $actions
  "dry_run" $r.dry_run) -}}
{{- $kept = append $kept $alert -}}
{{- end -}}
{{- end -}}
{{- if $kept -}}
{{- $groups = append $groups (dict "name" $g.name "interval" $g.interval "rules" $kept) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "groups" $groups) -}}
{{- end }}
