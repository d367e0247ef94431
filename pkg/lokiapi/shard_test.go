package lokiapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// TestShardParamPartitionsStreams: the shards of n together return every
// stream of the unsharded answer, each once, and their counts add up to the
// unsharded sum.
func TestShardParamPartitionsStreams(t *testing.T) {
	b := &fakeBackend{}
	for i := range 40 {
		b.add(labels.FromStrings("app", fmt.Sprint("a", i%5), "pod", fmt.Sprint("p", i)),
			logql.Entry{Timestamp: at(time.Duration(i) * 100 * time.Millisecond), Line: fmt.Sprint("line ", i)})
	}
	a := newTestAPI(t, testConfig(), b)
	streamsOf := func(params ...string) []string {
		code, body, h := call(t, a, http.MethodGet, PathPrefix+"query_range", vals(append([]string{"query", `{app=~"a.*"}`, "start", startT0, "end", end10s, "limit", "1000"}, params...)...), nil)
		require.Equal(t, http.StatusOK, code, body)
		n, err := strconv.ParseInt(h.Get(BytesReadHeader), 10, 64)
		require.NoError(t, err)
		if len(params) == 0 {
			require.Positive(t, n, "the bytes read are in the header")
		}
		var r struct {
			Data struct {
				Result []struct {
					Stream map[string]string `json:"stream"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		var out []string
		for _, s := range r.Data.Result {
			out = append(out, s.Stream["pod"])
		}
		return out
	}
	whole := streamsOf()
	require.Len(t, whole, 40)
	for _, n := range []int{1, 3, 16} {
		var union []string
		for i := range n {
			part := streamsOf(ShardParam, queryshard.Format(i, n))
			if n > 1 {
				require.Less(t, len(part), 40, "shard %d of %d", i, n)
			}
			union = append(union, part...)
		}
		slices.Sort(union)
		want := slices.Clone(whole)
		slices.Sort(want)
		require.Equal(t, want, union, "%d shards", n)
	}

	sum := func(params ...string) string {
		code, body, _ := call(t, a, http.MethodGet, PathPrefix+"query", vals(append([]string{"query", `sum(count_over_time({app=~"a.*"}[1m]))`, "time", end10s}, params...)...), nil)
		require.Equal(t, http.StatusOK, code, body)
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		if len(r.Data.Result) == 0 {
			return "0"
		}
		return r.Data.Result[0].Value[1].(string)
	}
	require.Equal(t, "40", sum())
	total := 0
	for i := range 4 {
		n, err := strconv.Atoi(sum(ShardParam, queryshard.Format(i, 4)))
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 40, total)

	for _, bad := range []string{"0_of_4", "5_of_4", "1_of_0", "x", "1_of_99999"} {
		code, body, _ := call(t, a, http.MethodGet, PathPrefix+"query_range", vals("query", `{app="a1"}`, "start", startT0, "end", end10s, ShardParam, bad), nil)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Contains(t, body, `invalid parameter "shard"`, bad)
	}
}
