package frontend

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordingCache is a results cache that keeps what it is given and says
// under which keys.
type recordingCache struct {
	mu   sync.Mutex
	keys []string
}

func (c *recordingCache) get(context.Context, []string) map[string][]byte { return nil }

func (c *recordingCache) set(values map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range values {
		c.keys = append(c.keys, k)
	}
}

func (c *recordingCache) stop() {}

// emptyMatrix answers every query with no series.
type emptyMatrix struct{}

func (emptyMatrix) Do(context.Context, string, string, url.Values, http.Header) (*Response, error) {
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`)}, nil
}

func (emptyMatrix) Proxy(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }

// TestPromQLCacheKeysArePinned pins the results cache keys of PromQL range
// queries byte for byte: a cache filled by an older query-frontend (or a
// memcached shared with one) must keep answering after an upgrade.
func TestPromQLCacheKeysArePinned(t *testing.T) {
	for _, c := range []struct {
		name string
		form url.Values
		now  time.Time // zero: 30 days after the data
		keys []string
	}{
		{
			name: "split over three days, other parameters in the key",
			form: url.Values{"query": {`sum by (job) (rate(c_total[5m]))`}, "start": {"1700002800"}, "end": {"1700150400"}, "step": {"60"}, "lookback_delta": {"1m"}, "limit": {"5"}},
			keys: []string{
				"qf1:0673fe1e22ead34e5b3b440a35780f73d8b6bf5526ce517eaa876ed7636bfbe8",
				"qf1:3c6a38ac59a01a2c4c484a7b2e47a31650d77e596b008845a251ed34abc3bfe3",
				"qf1:c1653e5aa129fbcea091deec482246c49e9c3159d0bab973961989a2700e5318",
			},
		},
		{
			name: "the part within the freshness window is not cached",
			form: url.Values{"query": {`sum by (job) (rate(c_total[5m]))`}, "start": {"1700002800"}, "end": {"1700150400"}, "step": {"60"}, "lookback_delta": {"1m"}, "limit": {"5"}},
			now:  time.Unix(1700150400+300, 0),
			keys: []string{
				"qf1:3c6a38ac59a01a2c4c484a7b2e47a31650d77e596b008845a251ed34abc3bfe3",
				"qf1:c1653e5aa129fbcea091deec482246c49e9c3159d0bab973961989a2700e5318",
			},
		},
		{
			name: "RFC 3339 times and a duration step",
			form: url.Values{"query": {`up{job="a"}`}, "start": {"2023-11-15T00:00:00Z"}, "end": {"2023-11-15T06:00:00Z"}, "step": {"5m"}},
			keys: []string{"qf1:8b84504445f17e2e38eab26774a26014143c24e2b1919ba96f08b77d38508c0a"},
		},
		{
			name: "statistics are never cached",
			form: url.Values{"query": {`up`}, "start": {"1700002800"}, "end": {"1700150400"}, "step": {"60"}, "stats": {"all"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFrontend(t, testConfig(), defaultLimits(), emptyMatrix{})
			now := c.now
			if now.IsZero() {
				now = time.UnixMilli(base).Add(30 * 24 * time.Hour)
			}
			f.now = func() time.Time { return now }
			rc := &recordingCache{}
			f.cache = rc
			rec := call(f, "tenant-1", "query_range", c.form)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			slices.Sort(rc.keys)
			require.Equal(t, c.keys, rc.keys)
		})
	}
}
