package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAISDK runs testdata/npm/sdk.mjs, which calls the server with the
// official openai npm package. It needs `npm install` in testdata/npm
// (CI does it); without node_modules it is skipped, or fails under CI=true.
func TestOpenAISDK(t *testing.T) {
	dir := filepath.Join("testdata", "npm")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openai npm package not installed in %s (run npm install there): %v", dir, err)
		}
		t.Skipf("openai npm package not installed in %s; run npm install there", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node not found")
		}
		t.Skip("node not found")
	}
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FORETOKEN_URL="+ts.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node sdk.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
