package logchunk

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// corpusKinds are the kinds of stream the benchmarks and the filter
// measurements run on: one chunk holds one stream, so one kind.
var corpusKinds = []string{"nginx", "logfmt", "json"}

// corpusStart is the first timestamp of every generated stream.
var corpusStart = time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)

// genCorpus returns entries of one stream of the given kind, with fixed seed,
// until their lines add up to at least rawBytes. Timestamps advance by
// 0–2 ms; the logfmt and json kinds carry structured metadata (a pod name
// and, on some lines, a user id), as Loki's OTLP and promtail pipelines add.
func genCorpus(tb testing.TB, kind string, seed uint64, rawBytes int) []Entry {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 0x6c6f6763))
	g := corpusGen{r: r}
	ts := corpusStart.UnixNano()
	var out []Entry
	for n := 0; n < rawBytes; {
		ts += r.Int64N(2_000_000)
		t := time.Unix(0, ts).UTC()
		var line string
		md := labels.EmptyLabels()
		switch kind {
		case "nginx":
			line = g.nginx(t)
		case "logfmt":
			line = g.logfmt(t)
			md = g.metadata()
		case "json":
			line = g.json(t)
			md = g.metadata()
		default:
			tb.Fatalf("unknown corpus kind %q", kind)
		}
		out = append(out, Entry{Timestamp: ts, Line: line, Metadata: md})
		n += len(line)
	}
	return out
}

type corpusGen struct {
	r *rand.Rand
}

var (
	corpusPaths   = []string{"/api/v1/users", "/api/v1/orders", "/api/v1/orders/search", "/api/v2/cart", "/static/js/app.js", "/static/css/site.css", "/healthz", "/login", "/api/v1/payments", "/metrics"}
	corpusMethods = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	corpusAgents  = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
		"curl/8.5.0",
		"kube-probe/1.29",
		"Go-http-client/1.1",
	}
	corpusLevels = []string{"debug", "info", "info", "info", "info", "info", "warn", "error"}
	corpusMsgs   = []string{
		"request handled", "cache miss", "cache hit", "order created", "payment authorised",
		"retrying upstream call", "connection reset by peer", "slow query", "user logged in",
		"rate limit exceeded", "context deadline exceeded", "message published",
	}
	corpusCallers = []string{"server.go:214", "handler.go:88", "cache/lru.go:131", "orders/service.go:402", "payments/client.go:77", "db/pool.go:310"}
	corpusPods    = []string{"api-7d9f8b6c5-x2k4q", "api-7d9f8b6c5-m8wzt", "api-7d9f8b6c5-p9q1r"}
)

func (g *corpusGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *corpusGen) hex(n int) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(digits[g.r.IntN(16)])
	}
	return b.String()
}

func (g *corpusGen) ip() string {
	return fmt.Sprintf("10.%d.%d.%d", g.r.IntN(4), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *corpusGen) status() int {
	switch x := g.r.IntN(100); {
	case x < 85:
		return 200
	case x < 90:
		return 304
	case x < 95:
		return 404
	case x < 98:
		return 401
	default:
		return 500
	}
}

func (g *corpusGen) path() string {
	p := g.pick(corpusPaths)
	if g.r.IntN(3) == 0 {
		p += "/" + strconv.Itoa(g.r.IntN(100000))
	}
	if g.r.IntN(4) == 0 {
		p += "?page=" + strconv.Itoa(1+g.r.IntN(20))
	}
	return p
}

func (g *corpusGen) nginx(t time.Time) string {
	return fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s" %.3f`,
		g.ip(), t.Format("02/Jan/2006:15:04:05 -0700"), g.pick(corpusMethods), g.path(),
		g.status(), g.r.IntN(60000), g.pick(corpusAgents), g.r.Float64()*0.5)
}

func (g *corpusGen) logfmt(t time.Time) string {
	return fmt.Sprintf(`ts=%s level=%s caller=%s msg=%q method=%s path=%s status=%d duration=%.1fms trace_id=%s user_id=%d`,
		t.Format(time.RFC3339Nano), g.pick(corpusLevels), g.pick(corpusCallers), g.pick(corpusMsgs),
		g.pick(corpusMethods), g.path(), g.status(), g.r.Float64()*300, g.hex(32), g.r.IntN(50000))
}

func (g *corpusGen) json(t time.Time) string {
	return fmt.Sprintf(`{"time":%q,"level":%q,"logger":"orders","msg":%q,"trace_id":%q,"span_id":%q,"http":{"method":%q,"path":%q,"status":%d},"duration_ms":%.2f,"customer":"cus_%s"}`,
		t.Format(time.RFC3339Nano), g.pick(corpusLevels), g.pick(corpusMsgs), g.hex(32), g.hex(16),
		g.pick(corpusMethods), g.path(), g.status(), g.r.Float64()*300, g.hex(12))
}

func (g *corpusGen) metadata() labels.Labels {
	if g.r.IntN(4) == 0 {
		return labels.FromStrings("pod", g.pick(corpusPods), "user_id", strconv.Itoa(g.r.IntN(50000)))
	}
	return labels.FromStrings("pod", g.pick(corpusPods))
}
