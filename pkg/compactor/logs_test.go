package compactor

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// testChunkTarget is small, so that merged streams span several chunks.
const testChunkTarget = 2 << 10

// logEntries are streams' entries, by the stream's labels.
type logEntries map[string][]logchunk.Entry

// shipLogBlock writes streams as one block shipped at shipped by ingester
// and uploads it; each stream's entries are cut into chunks of chunk
// entries (all in one chunk when 0).
func shipLogBlock(t *testing.T, bkt objstore.Bucket, tenant string, shipped time.Time, ingester string, streams logEntries, chunk int) logblock.Meta {
	t.Helper()
	var ss []logblock.Stream
	for k, es := range streams {
		ls, err := labelsOf(k)
		require.NoError(t, err)
		s := logblock.Stream{Labels: ls}
		n := chunk
		if n == 0 {
			n = len(es)
		}
		for i := 0; i < len(es); i += n {
			part := slices.Clone(es[i:min(i+n, len(es))])
			logchunk.SortByTime(part)
			c, err := logchunk.Encode(nil, part)
			require.NoError(t, err)
			s.Chunks = append(s.Chunks, c)
		}
		ss = append(ss, s)
	}
	id := ulid.MustNew(ulid.Timestamp(shipped), rand.Reader)
	dir := t.TempDir()
	m, err := logblock.Write(dir, id, ss, "ingester", ingester)
	require.NoError(t, err)
	require.NoError(t, logblock.Upload(context.Background(), bkt, tenant, dir, id))
	return m
}

func labelsOf(s string) (labels.Labels, error) {
	ms, err := validation.StreamRetention{Selector: s}.Matchers()
	if err != nil {
		return labels.EmptyLabels(), err
	}
	b := labels.NewScratchBuilder(len(ms))
	for _, m := range ms {
		b.Add(m.Name, m.Value)
	}
	b.Sort()
	return b.Labels(), nil
}

// uploadLogBlock ships a log block whose one entry is at ts.
func uploadLogBlock(t *testing.T, bkt objstore.Bucket, tenant string, ts time.Time) ulid.ULID {
	t.Helper()
	return shipLogBlock(t, bkt, tenant, ts, "i", logEntries{`{app="a"}`: {{Timestamp: ts.UnixNano(), Line: "a line"}}}, 0).ULID
}

// readBlock reads every entry of a block.
func readBlock(t *testing.T, bkt objstore.Bucket, tenant string, m logblock.Meta) logEntries {
	t.Helper()
	ctx := context.Background()
	b, err := logblock.OpenBlock(ctx, bkt, tenant, m)
	require.NoError(t, err)
	defer b.Close()
	out := logEntries{}
	_, err = b.Select(ctx, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")}, math.MinInt64, math.MaxInt64, nil, func(ls labels.Labels, es []logchunk.Entry) error {
		for _, e := range es {
			out[ls.String()] = append(out[ls.String()], logchunk.Entry{Timestamp: e.Timestamp, Line: strings.Clone(e.Line), Metadata: e.Metadata.Copy()})
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// readLive reads what a query sees: every entry of the tenant's listed
// blocks, equal entries once, each stream in the compactor's order.
func readLive(t *testing.T, bkt objstore.Bucket, tenant string) logEntries {
	t.Helper()
	metas, err := logblock.ListBlocks(context.Background(), bkt, tenant)
	require.NoError(t, err)
	all := logEntries{}
	for _, m := range metas {
		for k, es := range readBlock(t, bkt, tenant, m) {
			all[k] = append(all[k], es...)
		}
	}
	for k, es := range all {
		all[k] = canonical(es)
	}
	return all
}

// canonical sorts entries by time, line and metadata, without repeats.
func canonical(es []logchunk.Entry) []logchunk.Entry {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b logchunk.Entry) int {
		if a.Timestamp != b.Timestamp {
			return cmpInt(a.Timestamp, b.Timestamp)
		}
		return compareEntries(a, b)
	})
	return slices.CompactFunc(es, func(a, b logchunk.Entry) bool { return a.Timestamp == b.Timestamp && compareEntries(a, b) == 0 })
}

func liveMetas(t *testing.T, bkt objstore.Bucket, tenant string) []logblock.Meta {
	t.Helper()
	metas, err := logblock.ListBlocks(context.Background(), bkt, tenant)
	require.NoError(t, err)
	slices.SortFunc(metas, func(a, b logblock.Meta) int { return a.ULID.Compare(b.ULID) })
	return metas
}

// replicaStreams are the entries one replica of a push holds: entries of
// two streams, some sharing a timestamp, some with metadata.
func replicaStreams(base time.Time, n int) logEntries {
	out := logEntries{}
	for i := range n {
		ts := base.Add(time.Duration(i/2) * time.Second).UnixNano() // pairs share a timestamp
		md := labels.EmptyLabels()
		if i%5 == 0 {
			md = labels.FromStrings("trace_id", fmt.Sprintf("%04x", i))
		}
		out[`{app="web"}`] = append(out[`{app="web"}`], logchunk.Entry{Timestamp: ts, Line: fmt.Sprintf("GET /item/%d 200 %s", i, strings.Repeat("x", i%40)), Metadata: md})
		out[`{app="api"}`] = append(out[`{app="api"}`], logchunk.Entry{Timestamp: ts, Line: fmt.Sprintf("level=info n=%d", i)})
	}
	return out
}

func union(ss ...logEntries) logEntries {
	out := logEntries{}
	for _, s := range ss {
		for k, es := range s {
			out[k] = append(out[k], es...)
		}
	}
	for k, es := range out {
		out[k] = canonical(es)
	}
	return out
}

// TestLogsMergeDedupesReplicas: the blocks three replicas shipped in a
// merge window that is over become one block holding each entry once,
// which reads back exactly what the blocks read together; the replaced
// blocks are no longer listed, and deleted after the deletion delay.
// Blocks of a window not over yet are left alone.
func TestLogsMergeDedupesReplicas(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // a 2h window
	data := replicaStreams(window.Add(-30*time.Minute), 400)
	late := logEntries{`{app="web"}`: {{Timestamp: window.Add(-time.Hour).UnixNano(), Line: "a late line"}}}
	var srcs []ulid.ULID
	for i, ing := range []string{"ingester-1", "ingester-2", "ingester-3"} {
		// Replicas cut their chunks at different places.
		srcs = append(srcs, shipLogBlock(t, fs, "team", window.Add(time.Duration(10+i)*time.Minute), ing, data, 17+i*13).ULID)
	}
	srcs = append(srcs, shipLogBlock(t, fs, "team", window.Add(90*time.Minute), "ingester-2", late, 0).ULID)
	open := shipLogBlock(t, fs, "team", window.Add(2*time.Hour+time.Minute), "ingester-1", late, 0)
	want := readLive(t, fs, "team")
	require.Equal(t, union(data, late), want)

	now := window.Add(2*time.Hour + logsMergeGrace + time.Minute)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)

	metas := liveMetas(t, fs, "team")
	require.Len(t, metas, 2)
	merged := metas[0]
	require.Equal(t, open.ULID, metas[1].ULID, "the block of the next window, not over, is left alone")
	require.Equal(t, "compactor", merged.Source)
	slices.SortFunc(srcs, func(a, b ulid.ULID) int { return a.Compare(b) })
	require.Equal(t, srcs, merged.Sources)
	require.Equal(t, srcs[0].Time(), merged.ULID.Time(), "a merged block keeps its sources' shipping window")
	got := readBlock(t, fs, "team", merged)
	require.Equal(t, union(data, late), got, "each entry once, in order")
	require.Equal(t, int64(801), merged.Stats.Entries)
	require.Greater(t, merged.Stats.Chunks, 10, "chunks of the target size")
	require.Equal(t, want, readLive(t, fs, "team"), "a query reads the same")

	// The next pass merges nothing more; after the deletion delay the
	// sources go.
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Zero(t, res.Compacted)
	now = now.Add(c.cfg.DeletionDelay + time.Minute)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	for _, id := range srcs {
		ok, err := fs.Exists(ctx, path.Join(logblock.Dir("team", id), logblock.ChunksFile))
		require.NoError(t, err)
		require.False(t, ok, "source %s deleted", id)
	}
	require.Equal(t, want, readLive(t, fs, "team"))
}

// TestLogsMergeWindows: the blocks of a window are merged once it is over
// (with the grace), the largest window first; a window with one block is
// left as it is.
func TestLogsMergeWindows(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	block := func(shipped time.Duration) logblock.Meta {
		return logblock.Meta{ULID: ulid.MustNew(ulid.Timestamp(day.Add(shipped)), rand.Reader)}
	}
	a, b := block(10*time.Minute), block(100*time.Minute)  // window [0h, 2h)
	c, d := block(130*time.Minute), block(200*time.Minute) // [2h, 4h)
	e := block(5 * time.Hour)                              // [4h, 6h) alone
	f, g := block(25*time.Hour), block(25*time.Hour)       // the next day
	windows := []time.Duration{2 * time.Hour, 24 * time.Hour}
	ids := func(jobs []logsJob) [][]ulid.ULID {
		var out [][]ulid.ULID
		for _, j := range jobs {
			var s []ulid.ULID
			for _, m := range j.blocks {
				s = append(s, m.ULID)
			}
			out = append(out, s)
		}
		return out
	}
	all := []logblock.Meta{g, f, e, d, c, b, a}
	for _, tc := range []struct {
		name string
		now  time.Duration
		want [][]ulid.ULID
	}{
		{"no window over", 2 * time.Hour, nil},
		{"the first, after the grace", 2*time.Hour + logsMergeGrace, [][]ulid.ULID{{a.ULID, b.ULID}}},
		{"two", 4*time.Hour + logsMergeGrace, [][]ulid.ULID{{a.ULID, b.ULID}, {c.ULID, d.ULID}}},
		{"the day", 24*time.Hour + logsMergeGrace, [][]ulid.ULID{{a.ULID, b.ULID, c.ULID, d.ULID, e.ULID}}},
		{"the day and a window of the next", 26*time.Hour + logsMergeGrace, [][]ulid.ULID{{a.ULID, b.ULID, c.ULID, d.ULID, e.ULID}, sortedIDs(f.ULID, g.ULID)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ids(planLogs(all, windows, day.Add(tc.now), nil)))
		})
	}
	jobs := planLogs(all, windows, day.Add(3*time.Hour), map[ulid.ULID]bool{e.ULID: true, a.ULID: true})
	require.Equal(t, [][]ulid.ULID{{a.ULID, b.ULID}, {e.ULID}}, ids(jobs), "a block to rewrite that no merge takes is rewritten alone")
	require.Equal(t, "rewrite", jobs[1].kind)
}

func sortedIDs(ids ...ulid.ULID) []ulid.ULID {
	slices.SortFunc(ids, func(a, b ulid.ULID) int { return a.Compare(b) })
	return ids
}

// TestLogsRetention: a log block whose newest entry is past the tenant's
// logs retention is marked for deletion (queriers stop listing it), then
// deleted, whole, after the deletion delay; newer blocks and tenants
// without a retention keep theirs.
func TestLogsRetention(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := uploadLogBlock(t, fs, "team-l", now.Add(-49*time.Hour))
	recent := uploadLogBlock(t, fs, "team-l", now.Add(-47*time.Hour))
	uploadLogBlock(t, fs, "team-forever", now.Add(-1000*time.Hour))

	limits := defaultLimits()
	limits.LogsRetentionPeriod = model.Duration(48 * time.Hour)
	forever := limits
	forever.LogsRetentionPeriod = 0
	c := newTestCompactor(t, fs, limits, &now)
	c.limits = validation.NewStaticOverrides(limits, map[string]*validation.Limits{"team-forever": &forever})
	res := c.Run(ctx, false)
	require.Empty(t, res.Errors)

	metas := liveMetas(t, fs, "team-l")
	require.Len(t, metas, 1)
	require.Equal(t, recent, metas[0].ULID)
	ok, err := fs.Exists(ctx, path.Join(logblock.Dir("team-l", old), logblock.ChunksFile))
	require.NoError(t, err)
	require.True(t, ok, "kept until the deletion delay has passed: a querier may be reading it")

	now = now.Add(c.cfg.DeletionDelay)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	var left []string
	require.NoError(t, fs.Iter(ctx, "team-l/logs/"+old.String()+"/", func(n string) error { left = append(left, n); return nil }))
	require.Empty(t, left, "every object of the expired block is gone")
	require.Len(t, liveMetas(t, fs, "team-forever"), 1, "no retention: kept")
}

// TestLogsStreamRetention: with logs_retention_stream rules, each stream
// is kept for its rule's period: a block where a short-lived stream has
// expired is rewritten without it, a block where every stream has is
// deleted whole, and merges drop expired entries.
func TestLogsStreamRetention(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	limits := defaultLimits()
	limits.LogsRetentionPeriod = model.Duration(30 * 24 * time.Hour)
	limits.LogsRetentionStream = []validation.StreamRetention{
		{Selector: `{app=~"dev.*"}`, Priority: 1, Period: model.Duration(24 * time.Hour)},
		{Selector: `{app="dev-audit"}`, Priority: 2, Period: 0}, // forever
		{Selector: `{app="dev-short"}`, Priority: 1, Period: model.Duration(time.Hour)},
	}
	entries := func(at time.Time, apps ...string) logEntries {
		out := logEntries{}
		for _, a := range apps {
			out[fmt.Sprintf("{app=%q}", a)] = []logchunk.Entry{{Timestamp: at.UnixNano(), Line: a + " line"}}
		}
		return out
	}
	// Each block alone in its merge windows: only retention rewrites them.
	twoDays := now.Add(-48 * time.Hour)
	mixed := shipLogBlock(t, fs, "t", twoDays, "i", entries(twoDays, "prod", "dev"), 0)
	audit := shipLogBlock(t, fs, "t", twoDays.Add(-24*time.Hour), "i", entries(twoDays, "dev-audit"), 0)
	allDev := shipLogBlock(t, fs, "t", twoDays.Add(-48*time.Hour), "i", entries(twoDays.Add(3*time.Hour), "dev", "dev-x"), 0)
	ancient := shipLogBlock(t, fs, "t", now.Add(-31*24*time.Hour), "i", entries(now.Add(-31*24*time.Hour), "prod"), 0)
	// Two blocks of a window just over: merged, the dev-short entry of
	// two hours ago left out.
	w := time.Date(2026, 12, 10, 8, 0, 0, 0, time.UTC)
	fresh := union(entries(w.Add(30*time.Minute), "prod", "dev-short"), entries(w.Add(-2*time.Minute), "dev"))
	shipLogBlock(t, fs, "t", w.Add(time.Minute), "i", fresh, 0)
	shipLogBlock(t, fs, "t", w.Add(2*time.Minute), "j", fresh, 0)

	c := newTestCompactor(t, fs, limits, &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)

	got := logEntries{}
	var ids []ulid.ULID
	for _, m := range liveMetas(t, fs, "t") {
		ids = append(ids, m.ULID)
		for k, es := range readBlock(t, fs, "t", m) {
			got[k] = append(got[k], es...)
		}
	}
	require.Equal(t, logEntries{
		`{app="prod"}`:      {{Timestamp: twoDays.UnixNano(), Line: "prod line"}, {Timestamp: w.Add(30 * time.Minute).UnixNano(), Line: "prod line"}},
		`{app="dev-audit"}`: {{Timestamp: twoDays.UnixNano(), Line: "dev-audit line"}},
		`{app="dev"}`:       {{Timestamp: w.Add(-2 * time.Minute).UnixNano(), Line: "dev line"}},
	}, got)
	require.Contains(t, ids, audit.ULID, "a block with nothing expired is kept as is")
	require.NotContains(t, ids, mixed.ULID, "rewritten without its expired stream")
	require.NotContains(t, ids, allDev.ULID)
	require.NotContains(t, ids, ancient.ULID)
	l, err := logblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Equal(t, "retention: every entry past its stream's retention", l.Deletion[allDev.ULID].Reason, "deleted whole, not rewritten")
	require.Equal(t, "retention: every entry past its stream's retention", l.Deletion[ancient.ULID].Reason)

	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Zero(t, res.Compacted, "a rewritten block is not rewritten again")
}

// TestLogsDeleteRequest: a deletion request is applied once its cancel
// period has passed, to every block it concerns, removing exactly the
// entries of the selected streams in its range that its filter keeps;
// then it is processed.
func TestLogsDeleteRequest(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var all []logEntries
	for b := range 3 {
		es := logEntries{}
		for i := range 60 {
			ts := base.Add(time.Duration(b*60+i) * time.Minute).UnixNano()
			es[`{app="web"}`] = append(es[`{app="web"}`], logchunk.Entry{Timestamp: ts, Line: fmt.Sprintf("user=%d password=%v", i, i%3 == 0)})
			es[`{app="api"}`] = append(es[`{app="api"}`], logchunk.Entry{Timestamp: ts, Line: fmt.Sprintf("user=%d password=%v", i, i%3 == 0)})
		}
		all = append(all, es)
		// Shipped in the current window: no merge, only rewrites.
		shipLogBlock(t, fs, "t", base.Add(4*time.Hour+time.Duration(b)*time.Minute), "i", es, 7)
	}
	untouched := shipLogBlock(t, fs, "t", base.Add(4*time.Hour+10*time.Minute), "i", logEntries{`{app="web"}`: {{Timestamp: base.Add(-time.Hour).UnixNano(), Line: "password=true"}}}, 0)
	start, end := base.Add(30*time.Minute), base.Add(150*time.Minute)
	req := logdelete.Request{ID: logdelete.NewID(), Query: `{app="web"} |= "password=true"`, Start: start.UnixMilli(), End: end.UnixMilli(), CreatedAt: base.Add(4 * time.Hour).UnixMilli()}
	store := logdelete.NewStore(fs)
	require.NoError(t, store.Add(ctx, "t", req))

	now := base.Add(4*time.Hour + 30*time.Minute)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	c.cfg.LogsDeleteCancelPeriod = time.Hour
	want := readLive(t, fs, "t")
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, want, readLive(t, fs, "t"), "not applied within the cancel period")
	r, err := store.Get(ctx, "t", req.ID)
	require.NoError(t, err)
	require.False(t, r.Processed())

	now = base.Add(5*time.Hour + time.Minute)
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 3, res.Compacted, "the three blocks holding web entries in the range are rewritten")
	deleted := 0
	for _, e := range want[`{app="web"}`] {
		if e.Timestamp >= start.UnixNano() && e.Timestamp <= end.UnixNano() && strings.Contains(e.Line, "password=true") {
			deleted++
			continue
		}
	}
	require.Equal(t, 41, deleted)
	got := readLive(t, fs, "t")
	require.Equal(t, want[`{app="api"}`], got[`{app="api"}`], "other streams intact")
	var wantWeb []logchunk.Entry
	for _, e := range want[`{app="web"}`] {
		if !(e.Timestamp >= start.UnixNano() && e.Timestamp <= end.UnixNano() && strings.Contains(e.Line, "password=true")) {
			wantWeb = append(wantWeb, e)
		}
	}
	require.Equal(t, wantWeb, got[`{app="web"}`], "exactly the matching lines in the range are gone")
	require.Contains(t, liveIDs(t, fs, "t"), untouched.ULID, "a block outside the range is not rewritten")
	r, err = store.Get(ctx, "t", req.ID)
	require.NoError(t, err)
	require.True(t, r.Processed())
	require.Equal(t, now.UnixMilli(), r.ProcessedAt)
}

func liveIDs(t *testing.T, bkt objstore.Bucket, tenant string) []ulid.ULID {
	var out []ulid.ULID
	for _, m := range liveMetas(t, bkt, tenant) {
		out = append(out, m.ULID)
	}
	return out
}

// failingMeta is a bucket whose uploads of the compactor's meta.json fail
// while fail is set: a compactor that dies in the middle of an upload.
type failingMeta struct {
	objstore.Bucket
	fail bool
}

func (b *failingMeta) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if b.fail && strings.HasSuffix(name, "/"+logblock.MetaFile) {
		return fmt.Errorf("injected failure uploading %s", name)
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}

// TestLogsCrashMidWrite: a merge that fails before its block's meta.json
// is uploaded leaves the sources listed and readable, and the half block
// unlisted; the next pass merges again, and the half block is deleted
// once the partial block deletion delay has passed.
func TestLogsCrashMidWrite(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	bkt := &failingMeta{Bucket: fs}
	ctx := context.Background()
	// Real times: the partial block's age is its objects' modification
	// time.
	now := time.Now()
	window := now.Truncate(2 * time.Hour).Add(-4 * time.Hour)
	data := replicaStreams(window, 50)
	shipLogBlock(t, fs, "t", window.Add(time.Minute), "a", data, 9)
	shipLogBlock(t, fs, "t", window.Add(2*time.Minute), "b", data, 11)
	want := readLive(t, fs, "t")

	c := newTestCompactor(t, bkt, defaultLimits(), &now)
	bkt.fail = true
	res := c.Run(ctx, true)
	require.NotEmpty(t, res.Errors)
	require.Contains(t, res.Errors[0], "injected failure")
	l, err := logblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Len(t, l.Partial, 1, "the half-written block has no meta.json")
	require.Empty(t, l.Deletion, "no source is marked")
	require.Equal(t, want, readLive(t, fs, "t"), "queries read the sources as before")

	bkt.fail = false
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)
	require.Len(t, liveMetas(t, fs, "t"), 1)
	require.Equal(t, want, readLive(t, fs, "t"))
	l, err = logblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Len(t, l.Partial, 1, "kept until the partial block deletion delay has passed")

	now = now.Add(c.cfg.PartialBlockDeletionDelay + time.Minute)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	l, err = logblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Empty(t, l.Partial)
}
