// Package integration starts the real canopy binary (and, where installed, a
// real Prometheus) as processes on 127.0.0.1 and checks what users see on the
// wire. The binary is built once by TestMain (or taken from
// $CANOPY_INTEGRATION_BIN); every test is skipped with -short.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// canopyBin is the path of the binary TestMain built.
var canopyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself (requireIntegration), so -v says why.
		os.Exit(m.Run())
	}
	if bin := os.Getenv("CANOPY_INTEGRATION_BIN"); bin != "" {
		// A binary built elsewhere (e.g. to try a patch): no build.
		canopyBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "canopy-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: creating temp dir:", err)
		os.Exit(1)
	}
	canopyBin = filepath.Join(dir, "canopy")
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", canopyBin, "./cmd/canopy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/canopy: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "integration: built %s in %s\n", canopyBin, time.Since(start).Round(time.Millisecond))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the directory of the module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// requireIntegration skips the test in -short mode.
func requireIntegration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: builds and starts real processes; skipped with -short")
	}
	if canopyBin == "" {
		t.Fatal("canopy binary was not built by TestMain")
	}
}
