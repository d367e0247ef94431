package layout

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
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

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// FuzzDecodeBucketIndex decodes arbitrary bucket index objects: the JSON
// inside the gzip (raw false), or the whole object (raw true). What decodes
// encodes to an object that decodes to the same index; what does not is an
// error naming the bucket index.
func FuzzDecodeBucketIndex(f *testing.F) {
	for _, name := range []string{"bucket-index.json", "bucket-index-empty.json"} {
		b := seedFile(f, name)
		f.Add(b, false)
		f.Add(gzipped(f, b), true)
		f.Add(b[:len(b)/2], false)            // truncated JSON
		f.Add(gzipped(f, b)[:len(b)/3], true) // truncated gzip
	}
	f.Add([]byte(`{"version":2}`), false)
	f.Add([]byte(`{"version":1,"blocks":[{"id":"not-a-ulid"}]}`), false)
	f.Add([]byte(`{"version":1,"blocks":[{"id":"01hf7y3c7z5q7w9n4d2t8g6r1a","min_time":1e3}]}`), false)
	f.Add([]byte(`{"version":1,"deletion_marks":[{"id":"81HF7Y3C7Z5Q7W9N4D2T8G6R1A"}]}`), false)
	f.Add([]byte(`[]`), false)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if !raw {
			data = gzipped(t, data)
		}
		x, err := decodeBucketIndex(bytes.NewReader(data))
		if err != nil {
			require.Contains(t, err.Error(), "bucket index")
			return
		}
		enc, err := encodeBucketIndex(x)
		require.NoError(t, err)
		back, err := decodeBucketIndex(bytes.NewReader(enc))
		require.NoError(t, err, "an encoded bucket index decodes")
		require.Equal(t, x, back)
	})
}

// FuzzDecodeMark decodes arbitrary markers. What decodes encodes to a
// marker that decodes to the same; what does not is an error.
func FuzzDecodeMark(f *testing.F) {
	for _, name := range []string{DeletionMarkFilename, NoCompactMarkFilename} {
		b := seedFile(f, name)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"01HF7Y3C7Z5Q7W9N4D2T8G6R1A","time":"1700000000","reason":"x","version":1}`))
	f.Add([]byte(`{"id":"01HF7Y3C7Z5Q7W9N4D2T8G6R1A","version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMark(data)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		enc, err := json.Marshal(m)
		require.NoError(t, err)
		back, err := decodeMark(enc)
		require.NoError(t, err, "an encoded marker decodes")
		require.Equal(t, m, back)
	})
}
