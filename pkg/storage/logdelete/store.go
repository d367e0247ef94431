// Package logdelete keeps a tenant's log deletion requests (Loki's
// /loki/api/v1/delete) in the bucket, one object each, so that every
// compactor and querier sees the same ones, and says which entries a
// request deletes. FORMAT.md documents the object; a golden test pins it.
package logdelete

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Dirname is the directory of a tenant's requests in its logs prefix:
// <tenant>/logs/delete-requests/<request_id>.json.
const Dirname = "delete-requests"

// Version is the request format version written by this code; readers
// refuse others.
const Version = 1

// maxRequestBytes bounds the object a reader reads (the query is bounded
// by the API).
const maxRequestBytes = 1 << 20

// ErrNotFound is returned by Get and Remove for a request that does not
// exist (never made, canceled, or of another tenant).
var ErrNotFound = errors.New("no delete request with that id")

// Request is one deletion request of a tenant: the entries of the streams
// its query selects, whose line its query's pipeline keeps, with a
// timestamp in [Start, End].
type Request struct {
	Version int `json:"version"`
	// ID is 16 lowercase hex digits (NewID).
	ID    string `json:"request_id"`
	Query string `json:"query"`
	// Start and End bound the entries deleted, Unix milliseconds, both
	// included (Loki keeps milliseconds).
	Start int64 `json:"start_ms"`
	End   int64 `json:"end_ms"`
	// CreatedAt is when the request was made, Unix milliseconds.
	CreatedAt int64 `json:"created_at_ms"`
	// ProcessedAt is when the compactor finished applying it, Unix
	// milliseconds; 0 while it is pending.
	ProcessedAt int64 `json:"processed_at_ms,omitempty"`
}

// Processed says whether the compactor has applied the request.
func (r Request) Processed() bool { return r.ProcessedAt != 0 }

// NewID returns a new random request ID.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// ValidID says whether id has the form of a request ID, so that it can
// name an object.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Store keeps requests in a bucket. Safe for concurrent use.
type Store struct {
	bkt objstore.Bucket
}

// NewStore returns the store of the requests in bkt (the whole bucket:
// requests live under each tenant's logs prefix).
func NewStore(bkt objstore.Bucket) *Store { return &Store{bkt: bkt} }

func objectName(tenant, id string) string {
	return path.Join(tenant, layout.Logs, Dirname, id+".json")
}

// Add stores a new request.
func (s *Store) Add(ctx context.Context, tenant string, r Request) error {
	if !ValidID(r.ID) {
		return fmt.Errorf("delete request id %q is not 16 hex digits", r.ID)
	}
	r.Version = Version
	b, err := encode(r)
	if err != nil {
		return err
	}
	if err := s.bkt.Upload(ctx, objectName(tenant, r.ID), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("storing delete request %s: %w", r.ID, err)
	}
	return nil
}

// encode returns the bytes of a request object: one line of JSON.
func encode(r Request) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decode parses a request object.
func decode(b []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return Request{}, err
	}
	if r.Version != Version {
		return Request{}, fmt.Errorf("delete request format version %d; this Canopy reads %d", r.Version, Version)
	}
	if !ValidID(r.ID) {
		return Request{}, fmt.Errorf("delete request id %q is not 16 hex digits", r.ID)
	}
	return r, nil
}

// Get reads one request; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, tenant, id string) (Request, error) {
	if !ValidID(id) {
		return Request{}, ErrNotFound
	}
	r, err := s.read(ctx, objectName(tenant, id))
	if s.bkt.IsObjNotFoundErr(err) {
		return Request{}, ErrNotFound
	}
	return r, err
}

func (s *Store) read(ctx context.Context, name string) (Request, error) {
	rc, err := s.bkt.Get(ctx, name)
	if err != nil {
		return Request{}, err
	}
	defer rc.Close() //nolint:errcheck // read-only
	b, err := io.ReadAll(io.LimitReader(rc, maxRequestBytes))
	if err != nil {
		return Request{}, fmt.Errorf("reading %s: %w", name, err)
	}
	r, err := decode(b)
	if err != nil {
		return Request{}, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// List returns a tenant's requests, oldest first.
func (s *Store) List(ctx context.Context, tenant string) ([]Request, error) {
	var names []string
	err := s.bkt.Iter(ctx, path.Join(tenant, layout.Logs, Dirname)+"/", func(name string) error {
		if strings.HasSuffix(name, ".json") {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing delete requests: %w", err)
	}
	out := make([]Request, 0, len(names))
	for _, n := range names {
		r, err := s.read(ctx, n)
		if s.bkt.IsObjNotFoundErr(err) {
			continue // canceled since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int {
		if a.CreatedAt != b.CreatedAt {
			return int(min(max(a.CreatedAt-b.CreatedAt, -1), 1))
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Remove deletes a request (a cancellation); ErrNotFound when there is
// none.
func (s *Store) Remove(ctx context.Context, tenant, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	name := objectName(tenant, id)
	// Some buckets answer a delete of nothing without an error.
	if ok, err := s.bkt.Exists(ctx, name); err != nil {
		return fmt.Errorf("reading delete request %s: %w", id, err)
	} else if !ok {
		return ErrNotFound
	}
	err := s.bkt.Delete(ctx, name)
	if s.bkt.IsObjNotFoundErr(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("removing delete request %s: %w", id, err)
	}
	return nil
}

// MarkProcessed records that the compactor has applied r.
func (s *Store) MarkProcessed(ctx context.Context, tenant string, r Request, at time.Time) error {
	r.ProcessedAt = max(at.UnixMilli(), 1)
	return s.Add(ctx, tenant, r)
}
