package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
