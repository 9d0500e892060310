// Command helm_render renders a Helm chart the way `helm template` does, for tests on machines
// without helm: Go's text/template, the sprig function library and Helm's own extra functions
// (include, tpl, toYaml, fromYaml, toJson, required, lookup, .Files, .Capabilities).
//
// Usage: helm_render [-f values.yaml]... [--set a.b=v]... [--name R] [--namespace N]
//
//	[--api-versions group/version]... [--kube-version v1.30.0] [--notes] [--strict] CHART_DIR
//
// Values are read with go-yaml v2, as Helm reads them. It prints every rendered manifest as a multi-document YAML stream (`# Source:` comments
// as helm prints them), or only NOTES.txt with --notes. Exit status 1 on any template error,
// with the error (template name and line) on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var valueFiles, sets, apiVersions listFlag
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.30.0", "Kubernetes version for .Capabilities")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	strict := flag.Bool("strict", false, "a missing map key is an error (helm lint --strict)")
	flag.Var(&valueFiles, "f", "values file (repeatable; later files win)")
	flag.Var(&sets, "set", "KEY=VALUE override (repeatable; dotted keys, YAML scalar values)")
	flag.Var(&apiVersions, "api-versions", "extra API version for .Capabilities (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm_render [flags] CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), options{
		name: *name, namespace: *namespace, kubeVersion: *kubeVersion, notes: *notes, strict: *strict,
		valueFiles: valueFiles, sets: sets, apiVersions: apiVersions,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm_render:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

type options struct {
	name, namespace, kubeVersion  string
	notes, strict                 bool
	valueFiles, sets, apiVersions []string
}

func render(chartDir string, opt options) (string, error) {
	chartMeta, err := readYAMLFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	values, err := readYAMLFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, file := range opt.valueFiles {
		override, err := readYAMLFile(file)
		if err != nil {
			return "", err
		}
		values = coalesce(values, override)
	}
	for _, kv := range opt.sets {
		if err := setValue(values, kv); err != nil {
			return "", err
		}
	}
	chartName, _ := chartMeta["name"].(string)
	files, err := loadFiles(chartDir)
	if err != nil {
		return "", err
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartObject(chartMeta),
		"Release": map[string]interface{}{
			"Name": opt.name, "Namespace": opt.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": newCapabilities(opt.kubeVersion, opt.apiVersions),
		"Files":        files,
	}
	return renderTemplates(chartDir, chartName, top, opt.notes, opt.strict)
}

// chartObject gives Chart.yaml's keys the capitalised names templates use (.Chart.AppVersion).
func chartObject(meta map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range meta {
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

func readYAMLFile(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := jsonish(raw).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a mapping", file)
	}
	return m, nil
}

// jsonish converts YAML-decoded data to what Helm sees: Helm reads values through
// sigs.k8s.io/yaml, i.e. go-yaml v2 (YAML 1.1: an unquoted `off` is false) and then JSON, so
// every map has string keys and every number is a float64 (printed as 1e+06 when large).
func jsonish(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, item := range t {
			t[k] = jsonish(item)
		}
		return t
	case map[interface{}]interface{}:
		out := map[string]interface{}{}
		for k, item := range t {
			out[fmt.Sprint(k)] = jsonish(item)
		}
		return out
	case []interface{}:
		for i, item := range t {
			t[i] = jsonish(item)
		}
		return t
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case uint64:
		return float64(t)
	default:
		return v
	}
}

// coalesce deep-merges override into base as Helm does: maps merge key by key, anything else is
// replaced, and a null in the override deletes the key.
func coalesce(base, override map[string]interface{}) map[string]interface{} {
	for k, v := range override {
		if v == nil {
			delete(base, k)
			continue
		}
		bm, bok := base[k].(map[string]interface{})
		om, ook := v.(map[string]interface{})
		if bok && ook {
			base[k] = coalesce(bm, om)
		} else {
			base[k] = v
		}
	}
	return base
}

func setValue(values map[string]interface{}, kv string) error {
	key, raw, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("--set %q: expected KEY=VALUE", kv)
	}
	var value interface{}
	if err := yaml.Unmarshal([]byte(raw), &value); err != nil {
		value = raw
	}
	parts := strings.Split(key, ".")
	cur := values
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = jsonish(value)
	return nil
}

func renderTemplates(chartDir, chartName string, top map[string]interface{}, notes, strict bool) (string, error) {
	tdir := filepath.Join(chartDir, "templates")
	var names []string
	root := template.New("gotpl")
	funcs := funcMap(root)
	missing := "missingkey=zero"
	if strict {
		missing = "missingkey=error"
	}
	root.Funcs(funcs).Option(missing)
	err := filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		name := path.Join(chartName, filepath.ToSlash(rel))
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := root.New(name).Parse(string(data)); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	var out strings.Builder
	for _, name := range names {
		base := path.Base(name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") &&
			!strings.HasSuffix(base, ".tpl") {
			continue
		}
		if strings.HasSuffix(base, ".tpl") {
			continue
		}
		data := withTemplate(top, name, chartName)
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		for _, doc := range splitDocs(text) {
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, doc)
		}
	}
	return out.String(), nil
}

func withTemplate(top map[string]interface{}, name, chartName string) map[string]interface{} {
	data := map[string]interface{}{}
	for k, v := range top {
		data[k] = v
	}
	data["Template"] = map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"}
	return data
}

// splitDocs splits a rendered file at `---` lines and drops documents that hold only whitespace
// and comments, as Helm does.
func splitDocs(text string) []string {
	var docs []string
	var cur []string
	flush := func() {
		doc := strings.TrimSpace(strings.Join(cur, "\n"))
		empty := true
		for _, line := range strings.Split(doc, "\n") {
			l := strings.TrimSpace(line)
			if l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, doc)
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["mustToYaml"] = func(v interface{}) (string, error) { return marshalYAML(v) }
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["mustToJson"] = func(v interface{}) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	f["fromJson"] = fromJSON
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // helm template: no cluster to look in
	}
	includeDepth := 0
	f["include"] = func(name string, data interface{}) (string, error) {
		if includeDepth > 1000 {
			return "", fmt.Errorf("include %q: rendering too deep", name)
		}
		includeDepth++
		defer func() { includeDepth-- }()
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

// marshalYAML writes YAML as Helm's toYaml does (sigs.k8s.io/yaml, i.e. go-yaml v2: sorted keys,
// sequences flush with their key, YAML 1.1 words such as "on" quoted).
func marshalYAML(v interface{}) (string, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

// toYAML is Helm's: errors render as the empty string, the trailing newline is trimmed.
func toYAML(v interface{}) string {
	s, err := marshalYAML(v)
	if err != nil {
		return ""
	}
	return s
}

func fromYAML(s string) map[string]interface{} {
	var raw interface{}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, ok := jsonish(raw).(map[string]interface{})
	if !ok {
		return map[string]interface{}{}
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var raw interface{}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return []interface{}{err.Error()}
	}
	a, _ := jsonish(raw).([]interface{})
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// Capabilities is .Capabilities: the Kubernetes version and the API versions it serves.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version, Major, Minor, GitVersion string
}

// VersionSet answers .Capabilities.APIVersions.Has "group/version" or "group/version/Kind".
type VersionSet []string

// Has reports whether the version (or version/kind) is served.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1",
	"rbac.authorization.k8s.io/v1", "coordination.k8s.io/v1", "storage.k8s.io/v1",
	"scheduling.k8s.io/v1", "node.k8s.io/v1", "apiextensions.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
}

func newCapabilities(version string, extra []string) Capabilities {
	v := strings.TrimPrefix(version, "v")
	parts := strings.SplitN(v, ".", 3)
	major, minor := parts[0], ""
	if len(parts) > 1 {
		minor = parts[1]
	}
	if _, err := strconv.Atoi(major); err != nil {
		major = "1"
	}
	return Capabilities{
		KubeVersion: KubeVersion{Version: "v" + v, Major: major, Minor: minor, GitVersion: "v" + v},
		APIVersions: append(append(VersionSet{}, builtinAPIVersions...), extra...),
	}
}
