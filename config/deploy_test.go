package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDeployExamples keeps examples/deploy honest: the config inside the Kubernetes
// manifests loads, the pod runs as non-root without privilege escalation, and the
// systemd unit keeps its hardening and its state directory.
func TestDeployExamples(t *testing.T) {
	raw, err := os.ReadFile("../examples/deploy/kubernetes/picket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		kinds[doc["kind"].(string)] = doc
	}
	cm, ok := kinds["ConfigMap"]["data"].(map[string]any)
	if !ok {
		t.Fatal("no ConfigMap data")
	}
	t.Setenv("PLATFORM_API_KEY", "test-platform-key")
	t.Setenv("PD_ROUTING_KEY", strings.Repeat("k", 32))
	t.Setenv("PICKET_GOSSIP_KEY", "ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE=")
	cfg, err := Parse("configmap:picket.yaml", []byte(cm["picket.yaml"].(string)))
	if err != nil {
		t.Errorf("the config in the ConfigMap does not load:\n%v", err)
	} else if cfg.Cluster == nil || cfg.Cluster.Bind != "0.0.0.0:7946" || len(cfg.Cluster.Secret.Reveal()) != 32 {
		t.Errorf("the ConfigMap's cluster: %+v", cfg.Cluster)
	}
	sts := kinds["StatefulSet"]
	text, _ := yaml.Marshal(sts)
	for _, want := range []string{"runAsNonRoot: true", "allowPrivilegeEscalation: false", "readOnlyRootFilesystem: true", "/readyz", "/var/lib/picket", "containerPort: 7946", "protocol: UDP"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("StatefulSet lacks %q", want)
		}
	}
	unit, err := os.ReadFile("../examples/deploy/picket.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "StateDirectory=picket", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("systemd unit lacks %q", want)
		}
	}
	docker, err := os.ReadFile("../examples/deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "./cmd/picket"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
