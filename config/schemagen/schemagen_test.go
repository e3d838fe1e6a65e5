package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/picket-dev/picket/config"
)

const schemaFile = "../picket.schema.json"

// The committed schema (embedded as config.JSONSchema, printed by `picket schema`) is
// what the types and their comments make now.
func TestSchemaIsCurrent(t *testing.T) {
	want, err := generate([]string{"..", "../../probe/expect"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go generate ./config`", schemaFile)
	}
	if !bytes.Equal(config.JSONSchema, want) {
		t.Fatal("config.JSONSchema differs from the file it embeds")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.JSONSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("picket.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("picket.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// asJSON turns a YAML document into the values a JSON decoder would give.
func asJSON(t *testing.T, name string, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

// pickConfigs are every Picket config the repository ships: examples/*.yaml, the one in
// the Kubernetes ConfigMap, and the valid and warning configs of config/testdata.
func picketConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"../../examples/*.yaml", "../testdata/valid-*.yaml", "../testdata/warn-*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	k8s, err := os.ReadFile("../../examples/deploy/kubernetes/picket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(k8s))
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind == "ConfigMap" {
			out["kubernetes ConfigMap picket.yaml"] = []byte(doc.Data["picket.yaml"])
		}
	}
	if len(out) < 6 {
		t.Fatalf("found %d configs, want the examples and testdata", len(out))
	}
	return out
}

func TestEveryShippedConfigValidates(t *testing.T) {
	s := compileSchema(t)
	for name, src := range picketConfigs(t) {
		if err := s.Validate(asJSON(t, name, src)); err != nil {
			t.Errorf("%s does not validate:\n%v", name, err)
		}
	}
}

// Each example tells yaml-language-server (VS Code's YAML extension, and others) where
// the schema is, by a path that resolves from the example's folder.
func TestExamplesNameTheSchema(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		src, _ := os.ReadFile(f)
		first, _, _ := strings.Cut(string(src), "\n")
		const prefix = "# yaml-language-server: $schema="
		if !strings.HasPrefix(first, prefix) {
			t.Errorf("%s: first line %q, want %s...", f, first, prefix)
			continue
		}
		ref := filepath.Join(filepath.Dir(f), strings.TrimPrefix(first, prefix))
		if b, err := os.ReadFile(ref); err != nil || !bytes.Equal(b, config.JSONSchema) {
			t.Errorf("%s names %s, which is not the schema (%v)", f, ref, err)
		}
	}
}

// What the loader refuses for its keys and types, the schema refuses too.
func TestSchemaRefusesUnknownKeysAndWrongTypes(t *testing.T) {
	s := compileSchema(t)
	base := "regions: {eu1: {vars: {api: \"http://x\"}}}\nproducts:\n  - name: web\n    journeys:\n      - name: home\n        steps:\n"
	for _, tc := range []struct{ name, step string }{
		{"unknown top-level key", "          - http: {url: \"{{.region.api}}/\"}\nproducts_typo: []\n"},
		{"unknown key in a step", "          - http: {url: \"{{.region.api}}/\", methd: GET}\n"},
		{"unknown key in expect", "          - http: {url: \"{{.region.api}}/\"}\n            expect: {statuses: [200]}\n"},
		{"a bad duration", "          - http: {url: \"{{.region.api}}/\"}\n            timeout: 5 seconds\n"},
		{"a mapping for a string", "          - http: {url: {a: b}}\n"},
		{"a list for a mapping", "          - http: [a]\n"},
		{"a word for an integer", "          - http: {url: \"{{.region.api}}/\", max_redirects: many}\n"},
	} {
		src := base + tc.step
		if _, err := config.Parse("t.yaml", []byte(src)); err == nil {
			t.Errorf("%s: Load accepts it; the case is wrong", tc.name)
		}
		if err := s.Validate(asJSON(t, tc.name, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts what Load refuses:\n%s", tc.name, src)
		}
	}
	for _, f := range []string{"../testdata/invalid-unknown-key.yaml", "../testdata/invalid-types.yaml"} {
		src, _ := os.ReadFile(f)
		if err := s.Validate(asJSON(t, f, src)); err == nil {
			t.Errorf("%s: the schema accepts it", f)
		}
	}
}
