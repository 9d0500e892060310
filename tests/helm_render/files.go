package main

import (
	"encoding/base64"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Files is .Files: every file of the chart outside templates/ and charts/, except Chart.yaml,
// values.yaml and values.schema.json (Helm's loader keeps those apart), by slash path.
type Files map[string][]byte

var notFiles = map[string]bool{"Chart.yaml": true, "values.yaml": true, "values.schema.json": true}

func loadFiles(chartDir string) (Files, error) {
	files := Files{}
	err := filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if info.IsDir() {
			if rel == "templates" || rel == "charts" || (rel != "." && strings.HasPrefix(info.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if notFiles[rel] {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = data
		return nil
	})
	return files, err
}

// Get returns a file's content, or "" when it does not exist (as Helm does).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content as bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Glob returns the files whose path matches the shell pattern (`**` not supported).
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

// Lines splits a file into lines.
func (f Files) Lines(name string) []string {
	s := strings.TrimSuffix(string(f[name]), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (f Files) sortedNames() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AsConfig renders the files as ConfigMap data: base name -> content, as YAML.
func (f Files) AsConfig() string {
	m := map[string]interface{}{}
	for _, n := range f.sortedNames() {
		m[path.Base(n)] = string(f[n])
	}
	if len(m) == 0 {
		return ""
	}
	s, _ := marshalYAML(m)
	return s
}

// AsSecrets renders the files as Secret data: base name -> base64 content, as YAML.
func (f Files) AsSecrets() string {
	m := map[string]interface{}{}
	for _, n := range f.sortedNames() {
		m[path.Base(n)] = base64.StdEncoding.EncodeToString(f[n])
	}
	if len(m) == 0 {
		return ""
	}
	s, _ := marshalYAML(m)
	return s
}
