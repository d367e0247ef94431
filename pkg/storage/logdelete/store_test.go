package logdelete

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/request.json")

// TestRequestGolden pins the object's bytes (FORMAT.md).
func TestRequestGolden(t *testing.T) {
	r := Request{Version: Version, ID: "00112233445566ff", Query: `{app="web"} |= "password"`,
		Start: 1_700_000_000_000, End: 1_700_003_600_000, CreatedAt: 1_700_007_200_000, ProcessedAt: 1_700_093_600_000}
	got, err := encode(r)
	require.NoError(t, err)
	golden := filepath.Join("testdata", "request.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the request format changed:\n%s", got)
	back, err := decode(want)
	require.NoError(t, err)
	require.Equal(t, r, back)

	_, err = decode([]byte(`{"version":2,"request_id":"00112233445566ff"}`))
	require.ErrorContains(t, err, "format version 2")
}

func TestStore(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	s := NewStore(bkt)
	a := Request{ID: NewID(), Query: `{app="a"}`, Start: 1, End: 2, CreatedAt: 20}
	b := Request{ID: NewID(), Query: `{app="b"}`, Start: 1, End: 2, CreatedAt: 10}
	require.NoError(t, s.Add(ctx, "t", a))
	require.NoError(t, s.Add(ctx, "t", b))
	require.NoError(t, s.Add(ctx, "other", Request{ID: NewID(), Query: `{app="c"}`}))

	list, err := s.List(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, []string{b.ID, a.ID}, []string{list[0].ID, list[1].ID}, "oldest first")
	require.False(t, list[0].Processed())

	require.NoError(t, s.MarkProcessed(ctx, "t", a, time.UnixMilli(99)))
	got, err := s.Get(ctx, "t", a.ID)
	require.NoError(t, err)
	require.True(t, got.Processed())
	require.Equal(t, int64(99), got.ProcessedAt)

	require.NoError(t, s.Remove(ctx, "t", b.ID))
	require.ErrorIs(t, s.Remove(ctx, "t", b.ID), ErrNotFound)
	_, err = s.Get(ctx, "t", b.ID)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Get(ctx, "other", a.ID)
	require.ErrorIs(t, err, ErrNotFound, "another tenant's requests are not found")
	_, err = s.Get(ctx, "t", "../../x")
	require.ErrorIs(t, err, ErrNotFound)
	require.Error(t, s.Add(ctx, "t", Request{ID: "../x"}))
}

// TestFilter: a request deletes the entries of the streams it selects,
// in its range (both ends included), that its pipeline keeps.
func TestFilter(t *testing.T) {
	web := labels.FromStrings("app", "web")
	for _, tc := range []struct {
		name   string
		query  string
		stream labels.Labels
		ts     int64
		line   string
		md     labels.Labels
		want   bool
	}{
		{"selected, in range", `{app="web"}`, web, 1_500_000_000, "x", labels.EmptyLabels(), true},
		{"start included", `{app="web"}`, web, 1_000_000_000, "x", labels.EmptyLabels(), true},
		{"end included", `{app="web"}`, web, 2_000_000_000, "x", labels.EmptyLabels(), true},
		{"after the end", `{app="web"}`, web, 2_000_000_001, "x", labels.EmptyLabels(), false},
		{"before the start", `{app="web"}`, web, 999_999_999, "x", labels.EmptyLabels(), false},
		{"line filter keeps", `{app="web"} |= "secret"`, web, 1_500_000_000, "a secret", labels.EmptyLabels(), true},
		{"line filter drops", `{app="web"} |= "secret"`, web, 1_500_000_000, "public", labels.EmptyLabels(), false},
		{"metadata filter", `{app="web"} | user="bob"`, web, 1_500_000_000, "x", labels.FromStrings("user", "bob"), true},
		{"metadata filter drops", `{app="web"} | user="bob"`, web, 1_500_000_000, "x", labels.FromStrings("user", "amy"), false},
		{"parsed label", `{app="web"} | logfmt | level="debug"`, web, 1_500_000_000, "level=debug msg=x", labels.EmptyLabels(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Request{ID: "00112233445566ff", Query: tc.query, Start: 1000, End: 2000}.Filter()
			require.NoError(t, err)
			require.True(t, f.Selects(tc.stream))
			require.Equal(t, tc.want, f.ForStream(tc.stream).Deletes(tc.ts, tc.line, tc.md))
		})
	}
	f, err := Request{ID: "00112233445566ff", Query: `{app="web"}`, Start: 1000, End: 2000}.Filter()
	require.NoError(t, err)
	require.False(t, f.Selects(labels.FromStrings("app", "api")))
	require.True(t, f.Overlaps(2_000_000_000, 3_000_000_000))
	require.False(t, f.Overlaps(2_000_000_001, 3_000_000_000))
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct{ query, err string }{
		{"", "the query is empty"},
		{`sum(rate({app="a"}[1m]))`, "is a metric query"},
		{`{app="a"`, ""},
		{`{app="a"} |~ "("`, "invalid regular expression"},
	} {
		_, _, err := ParseQuery(tc.query)
		require.Error(t, err, tc.query)
		require.ErrorContains(t, err, tc.err)
	}
	_, pl, err := ParseQuery(`{app="a"}`)
	require.NoError(t, err)
	require.Nil(t, pl)
}
