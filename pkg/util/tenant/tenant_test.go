package tenant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		id string
		ok bool
	}{
		"plain":       {"team-a", true},
		"symbols":     {"a!b_c.d*e'f(g)", true},
		"empty":       {"", false},
		"dot":         {".", false},
		"dotdot":      {"..", false},
		"slash":       {"a/b", false},
		"too long":    {string(make([]byte, MaxLength+1)), false},
		"max length":  {stringOf('a', MaxLength), true},
		"utf8":        {"tenänt", false},
		"path escape": {"../x", false},
	} {
		t.Run(name, func(t *testing.T) {
			err := Validate(tc.id)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestResolverWrap(t *testing.T) {
	var seen string
	h := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		id, err := ID(r.Context())
		require.NoError(t, err)
		seen = id
	})
	for name, tc := range map[string]struct {
		enabled bool
		header  string
		code    int
		tenant  string
	}{
		"off ignores header": {false, "team-a", 200, Anonymous},
		"off no header":      {false, "", 200, Anonymous},
		"on with header":     {true, "team-a", 200, "team-a"},
		"on without header":  {true, "", 401, ""},
		"on bad header":      {true, "a/b", 401, ""},
	} {
		t.Run(name, func(t *testing.T) {
			seen = ""
			req := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				req.Header.Set(Header, tc.header)
			}
			rec := httptest.NewRecorder()
			Resolver{Enabled: tc.enabled}.Wrap(h).ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code)
			require.Equal(t, tc.tenant, seen)
		})
	}
}

// TestResolverSameOverHTTPAndGRPC: the HTTP header and the gRPC metadata
// give the same answer for the same input, through the one Resolve.
func TestResolverSameOverHTTPAndGRPC(t *testing.T) {
	for name, tc := range map[string]struct {
		enabled bool
		header  string // "" = absent
		want    string
		wantErr string
	}{
		"off: everything is anonymous": {enabled: false, header: "team-a", want: Anonymous},
		"on: the header names it":      {enabled: true, header: "team-a", want: "team-a"},
		"on: missing":                  {enabled: true, wantErr: "X-Scope-OrgID"},
		"on: invalid":                  {enabled: true, header: "../x", wantErr: "not allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			r := Resolver{Enabled: tc.enabled}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			md := metadata.MD{}
			if tc.header != "" {
				req.Header.Set(Header, tc.header)
				md.Set(Header, tc.header)
			}
			fromHTTP, errHTTP := r.FromRequest(req)
			fromGRPC, errGRPC := r.FromIncomingContext(metadata.NewIncomingContext(context.Background(), md))
			for _, got := range []struct {
				id  string
				err error
			}{{fromHTTP, errHTTP}, {fromGRPC, errGRPC}} {
				if tc.wantErr != "" {
					require.ErrorContains(t, got.err, tc.wantErr)
					continue
				}
				require.NoError(t, got.err)
				require.Equal(t, tc.want, got.id)
			}
		})
	}
}
