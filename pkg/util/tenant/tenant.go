// Package tenant resolves which tenant a request belongs to.
//
// Canopy follows the convention agents and Grafana already use: the tenant is
// the X-Scope-OrgID header. With multi-tenancy disabled every request belongs
// to the tenant "anonymous".
package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grafana/dskit/user"
	"google.golang.org/grpc/metadata"
)

// Anonymous is the tenant every request belongs to when multi-tenancy is off.
const Anonymous = "anonymous"

// Header is the HTTP header carrying the tenant ID.
const Header = "X-Scope-OrgID"

// MaxLength is the longest tenant ID accepted.
const MaxLength = 150

var (
	errMissing  = errors.New("no tenant ID: set the X-Scope-OrgID header (multi-tenancy is enabled by -auth.multitenancy-enabled)")
	errTooLong  = fmt.Errorf("tenant ID is longer than %d characters", MaxLength)
	errDotNames = errors.New(`tenant ID must not be "." or ".."`)
)

// Validate reports whether id may be used as a tenant ID. Tenant IDs become
// directory and object names, so the alphabet is restricted.
func Validate(id string) error {
	if id == "" {
		return errMissing
	}
	if len(id) > MaxLength {
		return errTooLong
	}
	if id == "." || id == ".." {
		return errDotNames
	}
	for i := 0; i < len(id); i++ {
		if !allowed(id[i]) {
			return fmt.Errorf("tenant ID %q has character %q that is not allowed (allowed: a-z A-Z 0-9 ! - _ . * ' ( ))", id, id[i])
		}
	}
	return nil
}

func allowed(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '-', '_', '.', '*', '\'', '(', ')':
		return true
	}
	return false
}

// ID returns the tenant stored in ctx by the HTTP middleware or the gRPC
// interceptors.
func ID(ctx context.Context) (string, error) {
	id, err := user.ExtractOrgID(ctx)
	if err != nil {
		return "", errMissing
	}
	return id, nil
}

// Resolver turns requests into tenants: every HTTP and gRPC entry point
// decides a request's tenant through it, so credentials (the tenants file of
// ARCHITECTURE.md §5) plug in here once. The zero value has multi-tenancy
// off. Safe for concurrent use.
type Resolver struct {
	// Enabled requires X-Scope-OrgID on every request.
	Enabled bool
}

// Resolve returns the tenant of a request whose headers (HTTP headers or
// gRPC metadata, by case-insensitive name) get returns.
func (r Resolver) Resolve(get func(name string) string) (string, error) {
	if !r.Enabled {
		return Anonymous, nil
	}
	id := get(Header)
	if err := Validate(id); err != nil {
		return "", err
	}
	return id, nil
}

// FromRequest returns the tenant the HTTP request belongs to.
func (r Resolver) FromRequest(req *http.Request) (string, error) {
	return r.Resolve(req.Header.Get)
}

// FromIncomingContext returns the tenant of a gRPC request from its
// metadata (x-scope-orgid).
func (r Resolver) FromIncomingContext(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return r.Resolve(func(name string) string {
		if v := md.Get(name); len(v) > 0 {
			return v[0]
		}
		return ""
	})
}

// Wrap returns a handler that injects the tenant into the request context and
// answers 401 when none can be resolved.
func (r Resolver) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, err := r.FromRequest(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, req.WithContext(user.InjectOrgID(req.Context(), id)))
	})
}

// SetHeader names tenant id on an outgoing HTTP request (to a downstream
// Canopy component, which resolves it again).
func SetHeader(req *http.Request, id string) { req.Header.Set(Header, id) }
