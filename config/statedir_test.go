package config

import (
	"os"
	"path/filepath"
	"testing"
)

// state_dir was relative to the working directory: `picket run -c /etc/picket/p.yaml`
// started from / and from /root used two different states (and two outboxes). It is now
// relative to the config file's folder, like secret files; absolute paths stay.
func TestStateDirIsRelativeToTheConfigFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	minimal, err := os.ReadFile("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), "abs-state")
	for _, tc := range []struct{ line, want string }{
		{"", filepath.Join(dir, "picket-state")},
		{"state_dir: state\n", filepath.Join(dir, "state")},
		{"state_dir: ../var/picket\n", filepath.Join(filepath.Dir(dir), "var", "picket")},
		{"state_dir: " + abs + "\n", abs},
	} {
		path := filepath.Join(dir, "picket.yaml")
		if err := os.WriteFile(path, append([]byte(tc.line), minimal...), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if cfg.StateDir != tc.want {
			t.Errorf("%q: state dir %s, want %s", tc.line, cfg.StateDir, tc.want)
		}
	}
}
