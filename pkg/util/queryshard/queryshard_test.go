package queryshard

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

func TestExtract(t *testing.T) {
	job := labels.MustNewMatcher(labels.MatchEqual, "job", "a")
	var h storage.SelectHints
	ms, err := Extract([]*labels.Matcher{job, Matcher(2, 16)}, &h)
	require.NoError(t, err)
	require.Equal(t, []*labels.Matcher{job}, ms)
	require.Equal(t, uint64(2), h.ShardIndex)
	require.Equal(t, uint64(16), h.ShardCount)

	h = storage.SelectHints{}
	in := []*labels.Matcher{job}
	ms, err = Extract(in, &h)
	require.NoError(t, err)
	require.Equal(t, in, ms)
	require.Zero(t, h.ShardCount)

	for _, bad := range []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, Label, "0_of_4"),
		labels.MustNewMatcher(labels.MatchEqual, Label, "5_of_4"),
		labels.MustNewMatcher(labels.MatchEqual, Label, "1_of_0"),
		labels.MustNewMatcher(labels.MatchEqual, Label, "1_of_99999"),
		labels.MustNewMatcher(labels.MatchEqual, Label, "x"),
		labels.MustNewMatcher(labels.MatchRegexp, Label, "1_of_4"),
	} {
		_, err := Extract([]*labels.Matcher{bad}, &storage.SelectHints{})
		require.ErrorContains(t, err, Label, bad.String())
	}
	_, err = Extract([]*labels.Matcher{Matcher(0, 2), Matcher(1, 2)}, &storage.SelectHints{})
	require.ErrorContains(t, err, "one shard")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1_of_16", "16_of_16", "0_of_1", "_of_", "1_of_1025", "-1_of_2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := Parse(s)
		if err != nil {
			return
		}
		if n == 0 || n > MaxShards || i >= n {
			t.Fatalf("Parse(%q) = %d, %d", s, i, n)
		}
		if got := Format(int(i), int(n)); got != s && len(got) >= len(s) {
			// Leading zeros or a plus sign parse too; the rendering is shorter.
			t.Fatalf("Format(Parse(%q)) = %q", s, got)
		}
	})
}
