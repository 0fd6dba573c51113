// Package testdata locates the shared test data (models, vocabularies and
// llama.cpp reference outputs) that the project's tests compare against.
package testdata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared data folder: $FORETOKEN_TESTDATA, else ../shared
// beside the repository root. When it is missing the test fails under CI
// (CI=true) and is skipped elsewhere.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FORETOKEN_TESTDATA")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "models")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data not found at %s (set FORETOKEN_TESTDATA): %v", dir, err)
		}
		t.Skipf("shared test data not found at %s (set FORETOKEN_TESTDATA)", dir)
	}
	return dir
}

// Path joins elements onto the shared data folder.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}
