package config

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const kustomizeDir = "../examples/deploy/kubernetes"

// yamlDocs decodes every document of a multi-document YAML stream.
func yamlDocs(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return yamlDocs(t, raw)
}

// dig follows keys (string for maps, int for lists) into a decoded YAML value.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func byKind(docs []map[string]any, kind, name string) map[string]any {
	for _, d := range docs {
		if d["kind"] == kind && dig(d, "metadata", "name") == name {
			return d
		}
	}
	return nil
}

// checkKustomized holds for the base's files and for kustomize's output alike: the
// ServiceMonitor selects the Service and scrapes its http port with the same metric
// relabelling as examples/prometheus/prometheus.yml (camelCased), and the image is
// pinned to a version.
func checkKustomized(t *testing.T, docs []map[string]any, image string) {
	t.Helper()
	svc, sm, sts := byKind(docs, "Service", "picket"), byKind(docs, "ServiceMonitor", "picket"), byKind(docs, "StatefulSet", "picket")
	if svc == nil || sm == nil || sts == nil {
		t.Fatalf("want a Service, a ServiceMonitor and a StatefulSet named picket")
	}
	for k, v := range dig(sm, "spec", "selector", "matchLabels").(map[string]any) {
		if dig(svc, "metadata", "labels", k) != v {
			t.Errorf("the ServiceMonitor selects %s=%v; the Service's labels are %v", k, v, dig(svc, "metadata", "labels"))
		}
	}
	if port := dig(sm, "spec", "endpoints", 0, "port"); port != dig(svc, "spec", "ports", 0, "name") {
		t.Errorf("the ServiceMonitor scrapes port %v, the Service's is %v", port, dig(svc, "spec", "ports", 0, "name"))
	}
	prom := readYAMLDocs(t, "../examples/prometheus/prometheus.yml")[0]
	for i, want := range dig(prom, "scrape_configs", 0, "metric_relabel_configs").([]any) {
		got := dig(sm, "spec", "endpoints", 0, "metricRelabelings", i)
		w := want.(map[string]any)
		camel := map[string]any{"sourceLabels": w["source_labels"], "regex": w["regex"], "targetLabel": w["target_label"], "replacement": w["replacement"]}
		if !reflect.DeepEqual(got, camel) {
			t.Errorf("metricRelabelings[%d] = %v, want prometheus.yml's %v", i, got, camel)
		}
	}
	if got := dig(sts, "spec", "template", "spec", "containers", 0, "image"); got != image {
		t.Errorf("image %v, want %s", got, image)
	}
}

func TestKustomizeBase(t *testing.T) {
	var docs []map[string]any
	for _, f := range []string{"picket.yaml", "servicemonitor.yaml"} {
		docs = append(docs, readYAMLDocs(t, kustomizeDir+"/"+f)...)
	}
	k := readYAMLDocs(t, kustomizeDir+"/kustomization.yaml")[0]
	tag, _ := dig(k, "images", 0, "newTag").(string)
	if tag == "" || tag == "latest" || dig(k, "images", 0, "name") != "picket" {
		t.Errorf("kustomization images: %v: want picket pinned to a version", k["images"])
	}
	checkKustomized(t, docs, "picket")
	if n := len(dig(k, "resources").([]any)); n != 2 {
		t.Errorf("resources: %d, want picket.yaml and servicemonitor.yaml", n)
	}
	// kustomize itself, as `kubectl apply -k` runs it.
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("PICKET_REQUIRE_KUBECTL") == "1" {
			t.Fatal("PICKET_REQUIRE_KUBECTL=1 but no kubectl on PATH (install: .ci/install-kubectl)")
		}
		t.Skip("no kubectl on PATH: kustomize not run (install: .ci/install-kubectl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "kustomize", kustomizeDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	built := yamlDocs(t, out)
	checkKustomized(t, built, "picket:"+tag)
	if len(built) != len(docs) || !strings.Contains(string(out), "kind: ServiceMonitor") {
		t.Errorf("kustomize made %d objects of the %d in the base", len(built), len(docs))
	}
}

// The image build gets the source and nothing else: no history, build outputs or local
// state files (which hold incidents and queued pages); and no deploy file runs `latest`.
func TestDockerIgnoreAndPinnedImages(t *testing.T) {
	raw, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	for _, want := range []string{".git", "bin/", "dist/", "picket-state/", "examples/picket-state/", "**/*.db", "**/*.test"} {
		if !lines[want] {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	for l := range lines {
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "config", "probe", "alert", "internal", "examples"} {
			if strings.TrimSuffix(l, "/") == needed || l == "*" {
				t.Errorf(".dockerignore leaves out %s, which the build needs", l)
			}
		}
	}
	for _, f := range []string{"../examples/deploy/Dockerfile", kustomizeDir + "/picket.yaml", kustomizeDir + "/kustomization.yaml", "../Makefile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), ":latest") || strings.Contains(string(b), "newTag: latest") {
			t.Errorf("%s runs or builds a latest tag", f)
		}
	}
	docker, _ := os.ReadFile("../examples/deploy/Dockerfile")
	if !strings.Contains(string(docker), "-X main.commit=${COMMIT}") {
		t.Error("the Dockerfile does not stamp the commit")
	}
}
