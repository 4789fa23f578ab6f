// Package shared locates the project's shared reference data
// (../shared/data beside the repository) for tests and benchmarks.
package shared

import (
	"os"
	"path/filepath"
	"testing"
)

// Data returns the path of a file or directory under ../shared/data,
// relative to the module root, and fails the test when it does not exist.
func Data(tb testing.TB, elem ...string) string {
	tb.Helper()
	root, err := moduleRoot()
	if err != nil {
		tb.Fatalf("shared data: %v", err)
	}
	p := filepath.Join(append([]string{root, "..", "shared", "data"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("shared data: %v (the shared/ directory must sit beside the repository)", err)
	}
	return p
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
