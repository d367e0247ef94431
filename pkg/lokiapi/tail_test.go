package lokiapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// tailServer serves an API over b on loopback with a clock the test moves.
func tailServer(t *testing.T, cfg Config, b Backend) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	a := newTestAPI(t, cfg, b)
	now := &atomic.Int64{}
	now.Store(at(10 * time.Second))
	a.now = func() time.Time { return time.Unix(0, now.Load()) }
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, now
}

func dialTail(t *testing.T, srv *httptest.Server, params url.Values) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/loki/api/v1/tail?" + params.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return conn
}

func readFrame(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	typ, msg, err := conn.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, typ)
	return string(msg)
}

func TestTail(t *testing.T) {
	cfg := testConfig()
	cfg.TailPollInterval = 10 * time.Millisecond
	b := testBackend()
	srv, now := tailServer(t, cfg, b)
	conn := dialTail(t, srv, vals("query", `{app="api"} |= "level"`, "start", startT0, "limit", "2"))
	defer conn.Close()

	// The first poll reads from start, at most limit entries, oldest first;
	// the next poll the rest.
	require.JSONEq(t, `{"streams":[{"stream":{"app":"api","env":"prod","job":"fake"},"values":[
		["1700000001000000000","level=info msg=\"request done\" status=200 duration=15ms"],
		["1700000002000000000","level=error msg=failed status=500 duration=1.5s"]]}],"dropped_entries":null}`, readFrame(t, conn))
	require.JSONEq(t, `{"streams":[{"stream":{"app":"api","env":"prod","job":"fake","trace_id":"abc"},"values":[
		["1700000003000000000","level=info msg=\"request done\" status=200 duration=20ms"]]}],"dropped_entries":null}`, readFrame(t, conn))

	// New entries are sent once they are older than now; what the query
	// filters out is not.
	api := labels.FromStrings("app", "api", "env", "prod", "job", "fake")
	b.add(api, logql.Entry{Timestamp: at(12 * time.Second), Line: "level=info later"})
	b.add(api, logql.Entry{Timestamp: at(11 * time.Second), Line: "no match"})
	b.add(api, logql.Entry{Timestamp: at(6 * time.Second), Line: "level=warn new"})
	require.JSONEq(t, `{"streams":[{"stream":{"app":"api","env":"prod","job":"fake"},"values":[
		["1700000006000000000","level=warn new"]]}],"dropped_entries":null}`, readFrame(t, conn))
	now.Store(at(13 * time.Second))
	require.JSONEq(t, `{"streams":[{"stream":{"app":"api","env":"prod","job":"fake"},"values":[
		["1700000012000000000","level=info later"]]}],"dropped_entries":null}`, readFrame(t, conn))

	require.NoError(t, conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
}

func TestTailEnds(t *testing.T) {
	cfg := testConfig()
	cfg.TailPollInterval = 10 * time.Millisecond
	cfg.TailMaxDuration = 100 * time.Millisecond
	srv, _ := tailServer(t, cfg, testBackend())
	conn := dialTail(t, srv, vals("query", `{app="db"}`, "start", startT0, "delay_for", "2"))
	defer conn.Close()
	require.Contains(t, readFrame(t, conn), "checkpoint complete")
	// After -querier.logs.tail-max-duration the server closes the tail.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := conn.ReadMessage()
	require.True(t, websocket.IsCloseError(err, websocket.CloseNormalClosure), "%v", err)

	// A store failure closes the tail with its message.
	failing := testBackend()
	failing.err = errorString("store unreachable")
	srv, _ = tailServer(t, cfg, failing)
	conn2 := dialTail(t, srv, vals("query", `{app="db"}`))
	defer conn2.Close()
	require.NoError(t, conn2.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err = conn2.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.CloseInternalServerErr, ce.Code)
	require.Equal(t, "store unreachable", ce.Text)
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestTailBadRequests(t *testing.T) {
	srv, _ := tailServer(t, testConfig(), testBackend())
	for _, tc := range []struct {
		params url.Values
		body   string
	}{
		{vals("query", `count_over_time({app="api"}[1m])`), `invalid parameter "query": only log queries can be tailed`},
		{vals("query", `{app="api"}`, "delay_for", "6"), `invalid parameter "delay_for": "6" is not a number of seconds from 0 to 5`},
		{vals("query", `{app="api"}`, "limit", "0"), `invalid parameter "limit": "0" is not a positive integer`},
		{vals("query", `{app=`), `parse error at position 6: expected a quoted value, found end of query`},
	} {
		resp, err := http.Get(srv.URL + "/loki/api/v1/tail?" + tc.params.Encode())
		require.NoError(t, err)
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, tc.body, string(body[:n]))
	}
}

func TestTruncateClose(t *testing.T) {
	require.Equal(t, "short", truncateClose("short"))
	long := strings.Repeat("é", 100) // 200 bytes
	got := truncateClose(long)
	require.LessOrEqual(t, len(got), 120)
	require.True(t, strings.HasPrefix(long, got))
	require.Equal(t, 0, len(got)%2, "not cut inside a character")
}
