package timetopage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// OutPath resolves a report path. A relative path is taken from the module root (the
// directory holding go.mod above the working directory), because `go test` runs a
// package's tests in the package's own directory while commands name paths from the
// root, like bench/out/timetopage.json.
func OutPath(p string) (string, error) {
	if p == "" || filepath.IsAbs(p) {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, p), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("module root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod in the working directory or above it")
		}
		dir = parent
	}
}

// WriteJSON writes v, indented, to path (resolved by OutPath), making its directory.
func WriteJSON(path string, v any) (string, error) {
	full, err := OutPath(path)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", full, err)
	}
	if err := os.WriteFile(full, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", full, err)
	}
	return full, nil
}
