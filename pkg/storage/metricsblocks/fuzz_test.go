package metricsblocks

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedFile returns a file of testdata: a golden file, so that the seeds are
// what this code writes.
func seedFile(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(f, err)
	return b
}

// FuzzDecodeMeta decodes arbitrary meta.json files. What decodes encodes to
// a meta.json that decodes again and encodes the same; what does not is an
// error naming meta.json.
func FuzzDecodeMeta(f *testing.F) {
	// The meta.json of the layout golden file, with a real block ID.
	layout := string(seedFile(f, "layout.txt"))
	_, meta, ok := strings.Cut(layout, "# meta.json\n")
	require.True(f, ok, "layout.txt has a meta.json")
	valid := []byte(strings.ReplaceAll(meta, "<ULID>", goldenBlock1.String()))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	f.Add(bytes.Replace(valid, []byte(`"minTime": 0`), []byte(`"minTime": 9999999999`), 1))
	f.Add([]byte(`{"ulid":"01HF7Y3C7Z5Q7W9N4D2T8G6R1A","version":1,"compaction":{"sources":[]},"canopy":null}`))
	f.Add([]byte(`{"ulid":"","version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMeta(data)
		if err != nil {
			require.Contains(t, err.Error(), "meta.json")
			return
		}
		enc, err := m.Encode()
		require.NoError(t, err)
		back, err := DecodeMeta(enc)
		require.NoError(t, err, "an encoded meta.json decodes")
		again, err := back.Encode()
		require.NoError(t, err)
		require.Equal(t, string(enc), string(again))
		require.Equal(t, m.ULID, back.ULID)
		require.Equal(t, m.Canopy, back.Canopy)
	})
}
