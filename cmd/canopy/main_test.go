package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/canopy"
)

var update = flag.Bool("update", false, "rewrite testdata/help.txt")

// TestHelpGolden pins `canopy -help`: every flag change shows up in review.
// Run `go test ./cmd/canopy -run TestHelpGolden -update` after changing flags.
func TestHelpGolden(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run([]string{"-help"}, &out))
	got := out.String()
	if host, err := os.Hostname(); err == nil && host != "" {
		got = strings.ReplaceAll(got, `"`+host+`"`, `"<hostname>"`)
	}
	if *update {
		require.NoError(t, os.WriteFile("testdata/help.txt", []byte(got), 0o644))
	}
	want, err := os.ReadFile("testdata/help.txt")
	require.NoError(t, err)
	require.Equal(t, string(want), got, "canopy -help changed: rerun with -update and review the diff")
}

func TestBadFlagsExit(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 2, run([]string{"-no-such-flag"}, &out))
	require.Contains(t, out.String(), "no-such-flag")
	out.Reset()
	require.Equal(t, 1, run([]string{"-target=nope", "-data-dir=" + t.TempDir()}, &out))
}

func TestConfigFileAndFlagOverride(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/canopy.yaml"
	require.NoError(t, os.WriteFile(file, []byte("target: nope-from-file\n"), 0o644))
	var out bytes.Buffer
	// The file's invalid target fails validation...
	require.Equal(t, 1, run([]string{"-config.file=" + file, "-data-dir=" + dir}, &out))
	// ...and a typo'd key is rejected by name.
	require.NoError(t, os.WriteFile(file, []byte("no_such_key: 1\n"), 0o644))
	out.Reset()
	require.Equal(t, 2, run([]string{"-config.file", file}, &out))
	require.Contains(t, out.String(), "no_such_key")
}

// TestConfigExpandEnv: with -config.expand-env a secret comes from the
// environment through the config file, never the command line.
func TestConfigExpandEnv(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/canopy.yaml"
	require.NoError(t, os.WriteFile(file, []byte("bucket:\n  s3:\n    secret_key: ${CANOPY_TEST_SECRET}\ntarget: ${CANOPY_TEST_TARGET}\n"), 0o644))
	t.Setenv("CANOPY_TEST_SECRET", "s3cr3t")
	t.Setenv("CANOPY_TEST_TARGET", "no-such-target")
	var out bytes.Buffer
	// Expanded: the target from the environment is read (and refused).
	require.Equal(t, 1, run([]string{"-config.file=" + file, "-config.expand-env", "-data-dir=" + dir}, &out))

	var cfg canopy.Config
	fs := flag.NewFlagSet("canopy", flag.ContinueOnError)
	require.NoError(t, canopy.Load(&cfg, fs, []string{"-config.file=" + file, "-config.expand-env=true", "-target=all"}))
	require.Equal(t, "s3cr3t", cfg.Bucket.S3.SecretKey)
	// Not expanded without the flag.
	cfg = canopy.Config{}
	require.NoError(t, canopy.Load(&cfg, flag.NewFlagSet("canopy", flag.ContinueOnError), []string{"-config.file=" + file, "-target=all"}))
	require.Equal(t, "${CANOPY_TEST_SECRET}", cfg.Bucket.S3.SecretKey)
}
