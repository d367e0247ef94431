package lokiapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// deleteAPI returns the deletion API over a bucket, behind the tenant
// middleware, with its clock at *now and a cancel period of an hour.
func deleteAPI(t *testing.T, now *time.Time) (http.Handler, *logdelete.Store) {
	t.Helper()
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	store := logdelete.NewStore(bkt)
	d := NewDeleteHandler(store, time.Hour, nil)
	d.now = func() time.Time { return *now }
	return tenant.Resolver{Enabled: true}.Wrap(d), store
}

func asTenant(id string) http.Header {
	h := http.Header{}
	h.Set(tenant.Header, id)
	return h
}

// listDeletes returns GET's answer and the requests' ids.
func listDeletes(t *testing.T, h http.Handler, id string) (string, []string) {
	t.Helper()
	code, body, hdr := call(t, h, http.MethodGet, PathDelete, nil, asTenant(id))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	var reqs []struct {
		ID string `json:"request_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &reqs))
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.ID)
	}
	return body, ids
}

// TestDeleteAPI: POST makes a request (204, no body), GET lists it in
// Loki's shape, per tenant, DELETE cancels it while it is pending.
func TestDeleteAPI(t *testing.T) {
	now := time.Unix(1_700_007_200, 0)
	h, store := deleteAPI(t, &now)

	body, ids := listDeletes(t, h, "a")
	require.Equal(t, "[]\n", body, "no request: an empty array")
	require.Empty(t, ids)

	code, body, _ := call(t, h, http.MethodPost, PathDelete+"?"+vals("query", `{app="web"} |= "password"`, "start", "1700000000", "end", "1700003600.5").Encode(), nil, asTenant("a"))
	require.Equal(t, http.StatusNoContent, code, body)
	require.Empty(t, body)
	now = now.Add(time.Second)
	code, body, _ = call(t, h, http.MethodPost, PathDelete, vals("query", `{app="api"}`, "start", "2023-11-14T22:13:20Z"), asTenant("a"))
	require.Equal(t, http.StatusNoContent, code, body, "PUT and form bodies too")

	body, ids = listDeletes(t, h, "a")
	require.Len(t, ids, 2)
	require.JSONEq(t, fmt.Sprintf(`[
		{"request_id":%q,"start_time":1700000000,"end_time":1700003600.5,"query":"{app=\"web\"} |= \"password\"","status":"received","created_at":1700007200},
		{"request_id":%q,"start_time":1700000000,"end_time":1700007201,"query":"{app=\"api\"}","status":"received","created_at":1700007201}
	]`, ids[0], ids[1]), body)
	_, other := listDeletes(t, h, "b")
	require.Empty(t, other, "another tenant's requests are not listed")
	code, _, _ = call(t, h, http.MethodGet, PathDelete, nil, nil)
	require.Equal(t, http.StatusUnauthorized, code)

	// Processed requests are listed as such and cannot be canceled.
	r, err := store.Get(context.Background(), "a", ids[1])
	require.NoError(t, err)
	require.NoError(t, store.MarkProcessed(context.Background(), "a", r, now))
	body, _ = listDeletes(t, h, "a")
	require.Contains(t, body, `"status":"processed"`)

	for _, tc := range []struct {
		name     string
		tenant   string
		params   url.Values
		code     int
		contains string
	}{
		{"no id", "a", nil, http.StatusBadRequest, `"request_id" is required`},
		{"unknown id", "a", vals("request_id", "0011223344556677"), http.StatusNotFound, "could not find delete request"},
		{"another tenant's", "b", vals("request_id", ids[0]), http.StatusNotFound, "could not find delete request"},
		{"not an id", "a", vals("request_id", "../x"), http.StatusNotFound, "could not find delete request"},
		{"processed", "a", vals("request_id", ids[1]), http.StatusBadRequest, "already processed"},
		{"pending", "a", vals("request_id", ids[0]), http.StatusNoContent, ""},
		{"canceled already", "a", vals("request_id", ids[0]), http.StatusNotFound, "could not find delete request"},
	} {
		t.Run("cancel "+tc.name, func(t *testing.T) {
			code, body, _ := call(t, h, http.MethodDelete, PathDelete, tc.params, asTenant(tc.tenant))
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.contains)
		})
	}
	_, ids = listDeletes(t, h, "a")
	require.Len(t, ids, 1, "a canceled request is no longer listed")

	code, _, hdr := call(t, h, http.MethodPatch, PathDelete, nil, asTenant("a"))
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Equal(t, "GET, POST, PUT, DELETE", hdr.Get("Allow"))
}

// TestDeleteAPICancelPeriod: past the cancel period a request is being
// applied: canceling it needs force=true.
func TestDeleteAPICancelPeriod(t *testing.T) {
	now := time.Unix(1_700_007_200, 0)
	h, _ := deleteAPI(t, &now)
	code, body, _ := call(t, h, http.MethodPost, PathDelete, vals("query", `{app="web"}`, "start", "1700000000"), asTenant("a"))
	require.Equal(t, http.StatusNoContent, code, body)
	_, ids := listDeletes(t, h, "a")
	now = now.Add(time.Hour)
	code, body, _ = call(t, h, http.MethodDelete, PathDelete, vals("request_id", ids[0]), asTenant("a"))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "is being applied (it is older than 1h0m0s, -compactor.logs.delete-request-cancel-period)")
	code, body, _ = call(t, h, http.MethodDelete, PathDelete, vals("request_id", ids[0], "force", "true"), asTenant("a"))
	require.Equal(t, http.StatusNoContent, code, body)
}

// TestDeleteAPIBadRequests: bad input is a 400 naming the parameter.
func TestDeleteAPIBadRequests(t *testing.T) {
	now := time.Unix(1_700_007_200, 0)
	h, _ := deleteAPI(t, &now)
	for _, tc := range []struct {
		name     string
		params   url.Values
		contains string
	}{
		{"no query", vals("start", "1700000000"), `the parameter "query" is required`},
		{"query does not parse", vals("query", `{app="web"`, "start", "1700000000"), `invalid parameter "query"`},
		{"metric query", vals("query", `count_over_time({app="web"}[1m])`, "start", "1700000000"), `invalid parameter "query": "count_over_time({app=\"web\"}[1m])" is a metric query`},
		{"bad regexp", vals("query", `{app="web"} |~ "("`, "start", "1700000000"), `invalid parameter "query"`},
		{"no start", vals("query", `{app="web"}`), `the parameter "start" is required`},
		{"start not a time", vals("query", `{app="web"}`, "start", "yesterday"), `invalid parameter "start": "yesterday" is neither Unix seconds nor RFC3339`},
		{"start in nanoseconds", vals("query", `{app="web"}`, "start", "1700000000000000000"), `invalid parameter "start": "1700000000000000000" is not Unix seconds`},
		{"end not a time", vals("query", `{app="web"}`, "start", "1700000000", "end", "1e9"), `invalid parameter "end"`},
		{"end in the future", vals("query", `{app="web"}`, "start", "1700000000", "end", "1700007201"), `invalid parameter "end": it is in the future`},
		{"start after end", vals("query", `{app="web"}`, "start", "1700000001", "end", "1700000000"), `"start" is after "end"`},
		{"bad max_interval", vals("query", `{app="web"}`, "start", "1700000000", "max_interval", "10ms"), `invalid parameter "max_interval"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := call(t, h, http.MethodPost, PathDelete+"?"+tc.params.Encode(), nil, asTenant("a"))
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, tc.contains)
			require.Equal(t, "text/plain; charset=utf-8", hdr.Get("Content-Type"))
		})
	}
	_, ids := listDeletes(t, h, "a")
	require.Empty(t, ids, "nothing was stored")
}
