package tempoapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testTags are the fake's names, out of order, with duplicates and a scope
// given twice.
func testTags() TagsResponse {
	return TagsResponse{Scopes: []TagScope{
		{Name: ScopeResource, Tags: []string{"service.name", "k8s.pod.name", "cluster"}},
		{Name: ScopeSpan, Tags: []string{"http.url", "http.method", "http.status_code"}},
		{Name: ScopeEvent, Tags: []string{"exception.message"}},
		{Name: ScopeSpan, Tags: []string{"http.method", "db.system"}},
		{Name: ScopeLink, Tags: nil},
	}}
}

func TestSearchTags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      string
		params    url.Values
		golden    string
		want      string // compact JSON, when not golden
		wantScope string
	}{
		{name: "v2, every scope, as Grafana asks", path: "v2/search/tags", params: vals("limit", "5000"), golden: "tags_v2.json"},
		{name: "v2, one scope", path: "v2/search/tags", params: vals("scope", "resource"), wantScope: "resource",
			want: `{"scopes":[{"name":"resource","tags":["cluster","k8s.pod.name","service.name"]}]}`},
		{name: "v2, limit per scope", path: "v2/search/tags", params: vals("scope", "span", "limit", "2"), wantScope: "span",
			want: `{"scopes":[{"name":"span","tags":["db.system","http.method"]}]}`},
		{name: "v2, intrinsics listed when the Backend has none", path: "v2/search/tags", params: vals("scope", "intrinsic", "limit", "3"), wantScope: "intrinsic",
			want: `{"scopes":[{"name":"intrinsic","tags":["duration","event:name","event:timeSinceStart"]}]}`},
		{name: "v2, all is every scope", path: "v2/search/tags", params: vals("scope", "all", "limit", "1"),
			want: `{"scopes":[{"name":"span","tags":["db.system"]},{"name":"resource","tags":["cluster"]},{"name":"event","tags":["exception.message"]},{"name":"intrinsic","tags":["duration"]}]}`},
		{name: "v1, span and resource names", path: "search/tags", golden: "tags_v1.json"},
		{name: "v1, one scope", path: "search/tags", params: vals("scope", "span"), wantScope: "span",
			want: `{"tagNames":["db.system","http.method","http.status_code","http.url"]}`},
		{name: "v1, intrinsics", path: "search/tags", params: vals("scope", "intrinsic", "limit", "2"), wantScope: "intrinsic",
			want: `{"tagNames":["duration","event:name"]}`},
		{name: "v1, limit", path: "search/tags", params: vals("limit", "2"),
			want: `{"tagNames":["cluster","db.system"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.tags = testTags()
			r := get(t, newTestAPI(t, testConfig(), f), tc.path, tc.params)
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.Equal(t, tc.wantScope, f.tagsReq.Scope)
			if tc.golden != "" {
				requireGolden(t, tc.golden, r.body)
			} else {
				require.Equal(t, tc.want, string(r.body))
			}
			if tc.path == "search/tags" {
				decodeStrict(t, r.body, &pbSearchTagsResponse{})
			} else {
				decodeStrict(t, r.body, &pbSearchTagsV2Response{})
			}
		})
	}
}

func TestSearchTagsIntrinsicsFromBackend(t *testing.T) {
	f := newFake()
	f.tags = TagsResponse{Scopes: []TagScope{{Name: ScopeIntrinsic, Tags: []string{"name", "status"}}, {Name: "custom", Tags: []string{"x"}}}}
	r := get(t, newTestAPI(t, testConfig(), f), "v2/search/tags", nil)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Equal(t, `{"scopes":[{"name":"intrinsic","tags":["name","status"]},{"name":"custom","tags":["x"]}]}`, string(r.body))
}

func TestSearchTagsEmpty(t *testing.T) {
	h := newTestAPI(t, testConfig(), newFake())
	r := get(t, h, "search/tags", vals("scope", "span"))
	require.Equal(t, `{"tagNames":[]}`, string(r.body))
	r = get(t, h, "v2/search/tags", vals("scope", "span"))
	require.Equal(t, `{"scopes":[]}`, string(r.body))
}

func TestSearchTagsParams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  url.Values
		want    TagsRequest
		wantErr string
	}{
		{name: "defaults"},
		{
			name:   "all of them",
			params: vals("scope", "span", "q", `{ resource.cluster = }`, "start", "1700000000", "end", "1700003600", "limit", "5000", "maxStaleValues", "100"),
			want:   TagsRequest{Scope: "span", Query: `{ resource.cluster = }`, Start: t0, End: t0.Add(time.Hour), Limit: 5000},
		},
		{name: "none is every scope", params: vals("scope", "none")},
		{name: "unknown scope", params: vals("scope", "trace"), wantErr: `invalid parameter "scope": "trace" is none of span, resource, event, link, instrumentation and intrinsic`},
		{name: "bad limit", params: vals("limit", "x"), wantErr: `invalid parameter "limit": "x" is not a non-negative integer`},
		{name: "bad end", params: vals("start", "1700000000", "end", "x"), wantErr: `invalid parameter "end": cannot parse "x" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
	} {
		for _, path := range []string{"search/tags", "v2/search/tags"} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				f := newFake()
				r := get(t, newTestAPI(t, testConfig(), f), path, tc.params)
				if tc.wantErr != "" {
					require.Equal(t, http.StatusBadRequest, r.code)
					require.Equal(t, tc.wantErr, string(r.body))
					return
				}
				require.Equal(t, http.StatusOK, r.code, string(r.body))
				want, got := tc.want, f.tagsReq
				require.True(t, want.Start.Equal(got.Start))
				require.True(t, want.End.Equal(got.End))
				got.Start, got.End, want.Start, want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
				require.Equal(t, want, got)
			})
		}
	}
}

// testValues are the fake's values, out of order and with duplicates.
func testValues() TagValuesResponse {
	return TagValuesResponse{Values: []TagValue{
		{Type: "string", Value: "shop-backend"},
		{Type: "string", Value: "article-service"},
		{Value: "cart-service"},
		{Type: "string", Value: "shop-backend"},
		{Type: "int", Value: "200"},
		{Type: "string", Value: "200"},
	}}
}

func TestTagValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string // raw request target under PathPrefix
		golden  string
		want    string
		wantReq TagValuesRequest
	}{
		{
			name: "v2, as Grafana asks", target: "v2/search/tag/resource.service.name/values?q=%7Bspan.http.method%3D%22GET%22%7D&limit=5000",
			golden: "tag_values_v2.json", wantReq: TagValuesRequest{Tag: "resource.service.name", Query: `{span.http.method="GET"}`, Limit: 5000},
		},
		{
			name: "v2, limit", target: "v2/search/tag/.service.name/values?limit=2",
			want: `{"tagValues":[{"type":"int","value":"200"},{"type":"string","value":"200"}]}`, wantReq: TagValuesRequest{Tag: ".service.name", Limit: 2},
		},
		{
			name: "v2, an escaped slash stays in the name", target: "v2/search/tag/span.http%2Froute/values?limit=1",
			want: `{"tagValues":[{"type":"int","value":"200"}]}`, wantReq: TagValuesRequest{Tag: "span.http/route", Limit: 1},
		},
		{
			name: "v2, an incomplete q is passed on", target: "v2/search/tag/resource.cluster/values?q=" + url.QueryEscape("{ resource.cluster = }") + "&limit=1",
			want: `{"tagValues":[{"type":"int","value":"200"}]}`, wantReq: TagValuesRequest{Tag: "resource.cluster", Query: "{ resource.cluster = }", Limit: 1},
		},
		{
			name: "v1, a bare name is an unscoped attribute", target: "search/tag/service.name/values",
			golden: "tag_values_v1.json", wantReq: TagValuesRequest{Tag: ".service.name"},
		},
		{
			name: "v1, status.code is the status", target: "search/tag/status.code/values?limit=1",
			want: `{"tagValues":["200"]}`, wantReq: TagValuesRequest{Tag: "status", Limit: 1},
		},
		{
			name: "v1, a name with a space", target: "search/tag/my%20tag/values?limit=1",
			want: `{"tagValues":["200"]}`, wantReq: TagValuesRequest{Tag: `."my tag"`, Limit: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.values = testValues()
			r := getRaw(t, newTestAPI(t, testConfig(), f), PathPrefix+tc.target)
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			require.Equal(t, tc.wantReq, f.valuesReq)
			if tc.golden != "" {
				requireGolden(t, tc.golden, r.body)
			} else {
				require.Equal(t, tc.want, string(r.body))
			}
			if strings.HasPrefix(tc.target, "v2/") {
				decodeStrict(t, r.body, &pbSearchTagValuesV2Response{})
			} else {
				decodeStrict(t, r.body, &pbSearchTagValuesResponse{})
			}
		})
	}
}

func TestTagValuesErrors(t *testing.T) {
	for _, tc := range []struct {
		target   string
		wantCode int
		wantBody string
	}{
		{target: "v2/search/tag/x/values?limit=-5", wantCode: 400, wantBody: `invalid parameter "limit": "-5" is not a non-negative integer`},
		{target: "search/tag/x/values?start=1700000000", wantCode: 400, wantBody: `invalid parameter "end": give both start and end, or neither`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			r := getRaw(t, newTestAPI(t, testConfig(), newFake()), PathPrefix+tc.target)
			require.Equal(t, tc.wantCode, r.code)
			require.Equal(t, tc.wantBody, string(r.body))
		})
	}
}

// TestTagValuesTypes checks that every TraceQL type Tempo reports passes
// through v2 and is plain text in v1.
func TestTagValuesTypes(t *testing.T) {
	f := newFake()
	for i, typ := range []string{"string", "int", "float", "bool", "duration", "status", "kind"} {
		f.values.Values = append(f.values.Values, TagValue{Type: typ, Value: fmt.Sprint(i)})
	}
	h := newTestAPI(t, testConfig(), f)
	r := get(t, h, "v2/search/tag/x/values", nil)
	var v2 pbSearchTagValuesV2Response
	decodeStrict(t, r.body, &v2)
	require.Len(t, v2.TagValues, 7)
	require.Equal(t, "kind", v2.TagValues[6].Type)
	r = get(t, h, "search/tag/x/values", nil)
	require.Equal(t, `{"tagValues":["0","1","2","3","4","5","6"]}`, string(r.body))
}
