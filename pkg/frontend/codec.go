package frontend

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Codec is what the query pipeline knows of one signal's query API. The
// pipeline owns everything else — the outstanding-queries limit, the query
// length limit, splitting, the results cache, the fan-out of parts and
// shards through the fair queue, the fetched-series and -samples limits of
// sharded queries — and shares it between signals. promCodec is the
// Prometheus API's.
//
// R is the codec's decoded answer to one part of a query, what
// MergeResponses joins.
//
// A Codec is used by many requests at once and must be safe for concurrent
// use. What the pipeline passes to it (requests, bodies, decoded answers) is
// the pipeline's: a codec must not modify it, and must not keep it beyond
// the call unless it returns it.
type Codec[R any] interface {
	// DecodeRequest reads a client's request. A badRequest error is
	// answered with 400 and its message. A request the codec cannot read
	// but the downstream can answer, with its own message, comes back with
	// Verbatim set.
	DecodeRequest(r *http.Request) (*Request, error)
	// EncodeRequest renders req — the client's, one part of it, or a shard
	// query — as a downstream call: the API path below the downstream's
	// prefix (e.g. "query_range") and its parameters, in a new url.Values.
	EncodeRequest(req *Request) (path string, form url.Values)
	// DecodeResponse reads the body of a successful (200) answer to one part
	// of req, from the downstream or from the results cache. It may keep
	// the body undecoded until MergeResponses needs it.
	DecodeResponse(req *Request, body []byte) (R, error)
	// MergeResponses joins the answers to req's parts, in time order, into
	// the answer to req. With one part, it returns that part's answer.
	MergeResponses(req *Request, parts []R) (R, error)
	// EncodeResponse renders the answer sent to the client.
	EncodeResponse(req *Request, res R) (*Response, error)
	// Prefix is the path of the signal's API on the downstream (e.g.
	// "/prometheus/api/v1/"): EncodeRequest's paths are below it.
	Prefix() string
	// EncodeError renders an answer of the query-frontend's own making (a
	// limit, a request it cannot read, a failure) in the API's error shape.
	// code is the status the Prometheus API would answer with and typ its
	// errorType (bad_data, unavailable, canceled, timeout, execution,
	// internal): an API that answers another status for one of them maps it.
	EncodeError(code int, typ, msg string) *Response
}

// Request is one query as the pipeline sees it, as DecodeRequest made it.
// The pipeline copies it for each part (with its own Start and End) and
// ShardPlan.Shard for each shard query; the copies share Params, which is
// read-only once decoded.
type Request struct {
	// Query is the query text.
	Query string
	// Start and End are the first and last evaluation times and Step the
	// time between two, in milliseconds; an instant query has Step 0 and
	// Start == End. The query length limit applies to End - Start.
	Start, End, Step int64
	// Params are the request's other parameters, for EncodeRequest.
	Params url.Values
	// CacheKey tells the answer apart from every other answer of the same
	// tenant and time range: it holds every parameter that changes the
	// answer. Empty, the request is neither answered from nor stored in the
	// results cache. A new signal's keys must not collide with another's:
	// start them with the signal's name.
	CacheKey string
	// Split lets the pipeline cut the request at multiples of
	// -query-frontend.split-queries-by-interval into parts that keep its
	// step grid (start + k*step): each part is run, cached and answered on
	// its own, and MergeResponses joins them.
	Split bool
	// Sharding, when not nil, runs each part as shards.
	Sharding ShardPlan
	// seriesKey names the query among the series estimates (empty: its
	// series are not remembered).
	seriesKey string
	// Header holds the client's request headers every downstream call of
	// the request carries (Loki's X-Loki-Response-Encoding-Flags); nil for
	// none. Read-only once decoded, like Params.
	Header http.Header
	// Budget, when not nil, holds every downstream call of the request to
	// a per-query limit together.
	Budget Budget
	// State is the codec's own decoded form of the request, for its other
	// methods; read-only once decoded, like Params.
	State any
	// Verbatim marks a request the codec could not read (a malformed time,
	// a query that does not parse): it is sent as EncodeRequest renders it,
	// as one downstream call through the queue, under no limit but the
	// outstanding-queries one, and the downstream's answer, with its own
	// error message, goes back unchanged.
	Verbatim bool
}

// ShardPlan runs a request as shards: each of the n shards runs Queries()
// downstream queries over its share of the data, and a ShardMerger computes
// each part's answer from all of their answers. A ShardPlan is shared by
// the parts of a request, run at once: it must be safe for concurrent use.
type ShardPlan interface {
	// Queries is how many downstream queries each shard runs (a PromQL
	// query with two shardable aggregations runs two).
	Queries() int
	// Shard is query k of shard i of n, for part.
	Shard(part *Request, k, i, n int) *Request
	// Merger collects the answers to part's shard queries.
	Merger(part *Request) ShardMerger
}

// ShardMerger computes one part's answer from its shard queries' answers.
// One goroutine uses it: Add for every answer, then Merge.
type ShardMerger interface {
	// Add reads the body of the successful answer to query k of shard i.
	// Answers come in order of k, then i. errNotShardable makes the
	// pipeline run the part again unsharded.
	Add(k, i int, body []byte) error
	// Merge returns the part's answer as the downstream would have given
	// it unsharded: a non-200 answer goes to the client unchanged, a 200
	// one is cached and decoded like any part's. errNotShardable makes the
	// pipeline run the part again unsharded.
	Merge(ctx context.Context) (*Response, error)
}

// Budget holds the downstream calls of one query — its parts, and their
// shards — to a per-query limit together, as they answer: the first answer
// that takes the query over the limit ends it at once, its calls still
// running canceled. Answers from the results cache read nothing and are not
// counted. DecodeRequest makes one per query; the query's calls use it at
// once, so it must be safe for concurrent use.
type Budget interface {
	// Spend counts a successful (200) answer of the downstream. An error
	// (an errLimit naming the limit) ends the query with it.
	Spend(resp *Response) error
}

// errLimit is a query over a per-query limit the query-frontend holds its
// parts and shards to together: 422 in the Prometheus API, as its queriers
// answer limits. reason is the limit's name, the label of
// canopy_query_frontend_rejected_queries_total.
type errLimit struct{ reason, msg string }

func (e errLimit) Error() string { return e.msg }

// errNotShardable makes a part run unsharded after all: a partial result
// the codec cannot merge exactly (PromQL: native histograms, whose JSON form
// does not carry their schema, or two series with one label set).
var errNotShardable = errors.New("partial results cannot be merged")

// badRequest is a DecodeRequest error: the client is answered with 400 and
// the message.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }
