// Command storebench measures Canopy's long-term storage against a real
// Prometheus holding the same samples: bytes per sample after compaction,
// and the latency of a long range query, cold and warm.
//
// It writes -days of a counter for -series series (one sample per
// -interval) as 2h Prometheus TSDB blocks — what a Prometheus or a Canopy
// ingester cuts from its head — then:
//
//   - Prometheus: the blocks go into its data directory; it compacts them
//     itself (its own leveled compaction) and answers the query from disk.
//   - Canopy: the blocks are uploaded to its filesystem bucket as an
//     ingester ships them; the compactor merges them (2h → 12h → 24h), and
//     the query goes through the query-frontend, querier and store-gateway.
//
// One system runs at a time. "Cold" is the first query after a restart
// (empty store-gateway and results caches; the OS page cache is dropped
// when the kernel allows it); "warm" repeats it.
//
//	go run ./tools/storebench -canopy bin/canopy -prometheus /path/to/prometheus
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
)

type config struct {
	canopy, prometheus string
	work               string
	series, jobs       int
	days               int
	interval, step     time.Duration
	query              string
	runs               int
	shards             int
	keep               bool
}

func main() {
	var c config
	flag.StringVar(&c.canopy, "canopy", "bin/canopy", "Canopy binary.")
	flag.StringVar(&c.prometheus, "prometheus", "", "Prometheus server binary; empty measures Canopy only.")
	flag.StringVar(&c.work, "work", "", "Working directory (blocks, data); empty: a new temporary one, removed at the end.")
	flag.IntVar(&c.series, "series", 10000, "Series of the counter x.")
	flag.IntVar(&c.jobs, "jobs", 10, "Values of the job label.")
	flag.IntVar(&c.days, "days", 7, "Days of data, ending at the last UTC midnight.")
	flag.DurationVar(&c.interval, "interval", time.Minute, "Time between two samples of a series.")
	flag.DurationVar(&c.step, "step", 10*time.Minute, "Step of the range query.")
	flag.StringVar(&c.query, "query", "sum by (job) (rate(x[5m]))", "The range query, over all the data.")
	flag.IntVar(&c.runs, "runs", 5, "Warm runs after the cold one.")
	flag.IntVar(&c.shards, "shards", -1, "Canopy's -query-frontend.query-sharding-total-shards; -1 keeps its default.")
	flag.BoolVar(&c.keep, "keep", false, "Keep the working directory.")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "storebench: "+format+"\n", args...)
}

// result is one system's figures.
type result struct {
	name          string
	bytes         int64
	blocks        int
	cold          time.Duration
	warm          []time.Duration
	warmNoResults []time.Duration // Canopy: warm chunk cache, results cache bypassed
	answer        []byte
}

func run(c config) error {
	if c.work == "" {
		d, err := os.MkdirTemp("", "storebench")
		if err != nil {
			return err
		}
		c.work = d
		if !c.keep {
			defer os.RemoveAll(d)
		}
	}
	end := time.Now().UTC().Truncate(24 * time.Hour)
	start := end.Add(-time.Duration(c.days) * 24 * time.Hour)
	blockDir := filepath.Join(c.work, "blocks")
	samples, err := generate(c, blockDir, start, end)
	if err != nil {
		return err
	}
	// The query covers the data; its first step has 5m of data behind it.
	qs, qe := start.Add(c.step), end.Add(-time.Minute)
	dropped := dropCaches()

	var results []*result
	if c.prometheus != "" {
		r, err := benchPrometheus(c, blockDir, qs, qe)
		if err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
		results = append(results, r)
	}
	r, err := benchCanopy(c, blockDir, qs, qe)
	if err != nil {
		return fmt.Errorf("canopy: %w", err)
	}
	results = append(results, r)

	fmt.Printf("data: %d series × %d days at %s = %d samples; query %q, step %s (%d points per series)\n",
		c.series, c.days, c.interval, samples, c.query, c.step, int(qe.Sub(qs)/c.step)+1)
	fmt.Printf("OS page cache dropped before each cold query: %v\n", dropped)
	fmt.Printf("%-11s %8s %12s %9s %11s %11s %18s\n", "system", "blocks", "bytes", "B/sample", "cold", "warm (p50)", "warm, no results cache (p50)")
	for _, r := range results {
		nr := "-"
		if len(r.warmNoResults) > 0 {
			nr = median(r.warmNoResults).Round(time.Millisecond).String()
		}
		fmt.Printf("%-11s %8d %12d %9.3f %11s %11s %18s\n", r.name, r.blocks, r.bytes, float64(r.bytes)/float64(samples),
			r.cold.Round(time.Millisecond), median(r.warm).Round(time.Millisecond), nr)
	}
	if len(results) == 2 {
		p, cn := results[0], results[1]
		fmt.Printf("canopy / prometheus: bytes %.2f×, cold %.2f×, warm %.3f×",
			float64(cn.bytes)/float64(p.bytes), float64(cn.cold)/float64(p.cold), float64(median(cn.warm))/float64(median(p.warm)))
		if len(cn.warmNoResults) > 0 {
			fmt.Printf(", warm without results cache %.2f×", float64(median(cn.warmNoResults))/float64(median(p.warm)))
		}
		fmt.Println()
		if err := sameAnswer(p.answer, cn.answer); err != nil {
			return fmt.Errorf("canopy and prometheus answer differently: %w", err)
		}
		fmt.Println("answers: identical series and timestamps, values within 1e-9")
	}
	return nil
}

// generate writes the data as 2h blocks and returns the number of samples.
func generate(c config, dir string, start, end time.Time) (int64, error) {
	if m, err := filepath.Glob(filepath.Join(dir, "*", "meta.json")); err == nil && len(m) > 0 {
		b, err := os.ReadFile(filepath.Join(dir, "samples"))
		if err == nil {
			logf("reusing the %d blocks in %s", len(m), dir)
			return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	logf("writing %d series × %d days into 2h blocks in %s", c.series, c.days, dir)
	lsets := make([]labels.Labels, c.series)
	values := make([]float64, c.series)
	rngs := make([]*rand.Rand, c.series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "x", "instance", fmt.Sprintf("host-%05d:9100", i), "job", fmt.Sprintf("job-%d", i%c.jobs))
		rngs[i] = rand.New(rand.NewPCG(uint64(i), 1))
	}
	const block = 2 * time.Hour
	step := c.interval.Milliseconds()
	var total int64
	t0 := time.Now()
	// One block more than the days: compactors leave the newest block (or
	// window) alone until newer data arrives, as it always does.
	for bs := start; bs.Before(end.Add(block)); bs = bs.Add(block) {
		// The writer's head takes samples down to half its chunk range
		// behind the newest one: twice the block keeps all appendable.
		w, err := tsdb.NewBlockWriter(promslog.NewNopLogger(), dir, 2*block.Milliseconds())
		if err != nil {
			return 0, err
		}
		ctx := context.Background()
		app := w.Appender(ctx)
		for i, ls := range lsets {
			var ref storage.SeriesRef
			for ts := bs.UnixMilli(); ts < bs.Add(block).UnixMilli(); ts += step {
				// A counter: mostly steady increments, now and then a burst,
				// a reset about once a week.
				inc := float64(rngs[i].IntN(20))
				if rngs[i].IntN(100) == 0 {
					inc += float64(rngs[i].IntN(2000))
				}
				values[i] += inc
				if rngs[i].IntN(10080) == 0 {
					values[i] = 0
				}
				ref, err = app.Append(ref, ls, ts, values[i])
				if err != nil {
					return 0, err
				}
				total++
			}
			if i%2000 == 1999 {
				if err := app.Commit(); err != nil {
					return 0, err
				}
				app = w.Appender(ctx)
			}
		}
		if err := app.Commit(); err != nil {
			return 0, err
		}
		if _, err := w.Flush(ctx); err != nil {
			return 0, err
		}
		if err := w.Close(); err != nil {
			return 0, err
		}
	}
	logf("wrote %d samples in %s", total, time.Since(t0).Round(time.Second))
	return total, os.WriteFile(filepath.Join(dir, "samples"), []byte(strconv.FormatInt(total, 10)), 0o644)
}

func benchPrometheus(c config, blockDir string, qs, qe time.Time) (*result, error) {
	data := filepath.Join(c.work, "prometheus-data")
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	if err := copyBlocks(blockDir, data); err != nil {
		return nil, err
	}
	cfg := filepath.Join(c.work, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--config.file=" + cfg, "--storage.tsdb.path=" + data, "--web.listen-address=127.0.0.1:" + port,
		"--storage.tsdb.retention.time=" + strconv.Itoa(c.days*24*4) + "h", "--log.level=warn"}
	base := "http://127.0.0.1:" + port
	p, err := startProcess(c, "prometheus", c.prometheus, args, base+"/-/ready")
	if err != nil {
		return nil, err
	}
	// Prometheus compacts every minute until nothing is left to plan.
	logf("waiting for Prometheus's compaction")
	prev, stable := -1, 0
	for stable < 3 {
		time.Sleep(30 * time.Second)
		n := countBlocks(data)
		if n == prev {
			stable++
		} else {
			prev, stable = n, 0
		}
	}
	p.stop()
	r := &result{name: "prometheus", blocks: countBlocks(data)}
	if r.bytes, err = blockBytes(data); err != nil {
		return nil, err
	}
	dropCaches()
	if p, err = startProcess(c, "prometheus", c.prometheus, args, base+"/-/ready"); err != nil {
		return nil, err
	}
	defer p.stop()
	if err := measure(r, base+"/api/v1/query_range", c, qs, qe, false); err != nil {
		return nil, err
	}
	return r, nil
}

func benchCanopy(c config, blockDir string, qs, qe time.Time) (*result, error) {
	data := filepath.Join(c.work, "canopy-data")
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	bkt, err := filesystem.NewBucket(filepath.Join(data, "bucket"))
	if err != nil {
		return nil, err
	}
	ids, err := filepath.Glob(filepath.Join(blockDir, "*", "meta.json"))
	if err != nil {
		return nil, err
	}
	logf("uploading %d blocks to Canopy's bucket", len(ids))
	tb := metricsblocks.TenantBucket(bkt, "anonymous")
	for _, m := range ids {
		if _, err := metricsblocks.Upload(context.Background(), tb, filepath.Dir(m), metricsblocks.CanopyMeta{Tenant: "anonymous", Source: metricsblocks.SourceIngester, Ingester: "storebench"}); err != nil {
			return nil, err
		}
	}
	ports := make([]string, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{
		"-data-dir=" + data,
		"-server.http-listen-address=127.0.0.1", "-server.http-listen-port=" + ports[0],
		"-server.grpc-listen-address=127.0.0.1", "-server.grpc-listen-port=" + ports[1],
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + ports[2],
		"-ingester.ring.instance-addr=127.0.0.1", "-store-gateway.ring.instance-addr=127.0.0.1",
		"-distributor.otlp.grpc-listen-address=", "-distributor.otlp.http-listen-address=",
		// Every sample is older than the ingesters' window anyway; the
		// bucket answers the whole range.
		"-querier.query-store-after=0",
		"-compactor.blocks-retention-period=0",
		"-log.level=warn",
	}
	if c.shards >= 0 {
		args = append(args, "-query-frontend.query-sharding-total-shards="+strconv.Itoa(c.shards))
	}
	base := "http://127.0.0.1:" + ports[0]
	p, err := startProcess(c, "canopy", c.canopy, args, base+"/ready")
	if err != nil {
		return nil, err
	}
	logf("running Canopy's compactor")
	t0 := time.Now()
	for pass := 0; ; pass++ {
		resp, err := http.Post(base+"/compactor/run", "", nil)
		if err != nil {
			p.stop()
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			p.stop()
			return nil, fmt.Errorf("compactor run: %s: %s", resp.Status, body)
		}
		// Done once the bucket holds one block per day (and the newest 2h).
		if n := len(liveBlocks(filepath.Join(data, "bucket", "anonymous", "metrics"))); n <= c.days+1 || pass > 10 {
			break
		}
	}
	logf("compacted in %s", time.Since(t0).Round(time.Second))
	p.stop()
	// Deletion-marked blocks wait for their delay; they are not what the
	// data costs to keep.
	live := liveBlocks(filepath.Join(data, "bucket", "anonymous", "metrics"))
	r := &result{name: "canopy", blocks: len(live)}
	for _, d := range live {
		n, err := blockBytes(d)
		if err != nil {
			return nil, err
		}
		r.bytes += n
	}
	dropCaches()
	if p, err = startProcess(c, "canopy", c.canopy, args, base+"/ready"); err != nil {
		return nil, err
	}
	defer p.stop()
	// The store-gateway has found its blocks once it answers for them.
	if err := measure(r, base+"/prometheus/api/v1/query_range", c, qs, qe, true); err != nil {
		return nil, err
	}
	return r, nil
}

// measure runs the query once cold, then c.runs times warm; with
// bypassResults, c.runs more times with a parameter that changes the
// results-cache key and nothing else.
func measure(r *result, u string, c config, qs, qe time.Time, bypassResults bool) error {
	form := url.Values{"query": {c.query}, "start": {apiTime(qs)}, "end": {apiTime(qe)}, "step": {strconv.FormatFloat(c.step.Seconds(), 'f', -1, 64)}}
	// A selector no series matches reads next to nothing but needs every
	// component ready (Canopy's store-gateway must have joined its ring).
	probe := url.Values{"query": {`count(x{job="storebench-probe"})`}, "time": {apiTime(qe)}}
	u0 := strings.TrimSuffix(u, "_range")
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		_, _, err := timedQuery(u0, probe)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
	}
	d, body, err := timedQuery(u, form)
	if err != nil {
		return err
	}
	r.cold, r.answer = d, body
	logf("%s: cold %s", r.name, d.Round(time.Millisecond))
	for range c.runs {
		d, _, err := timedQuery(u, form)
		if err != nil {
			return err
		}
		r.warm = append(r.warm, d)
	}
	if bypassResults {
		for i := range c.runs {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("_", strconv.Itoa(i))
			d, _, err := timedQuery(u, f)
			if err != nil {
				return err
			}
			r.warmNoResults = append(r.warmNoResults, d)
		}
	}
	return nil
}

func timedQuery(u string, form url.Values) (time.Duration, []byte, error) {
	t0 := time.Now()
	resp, err := http.PostForm(u, form)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("query: %s: %s", resp.Status, body)
	}
	return d, body, nil
}

// sameAnswer compares two query_range answers: same series and timestamps,
// values equal within a relative 1e-9 (sums in another order).
func sameAnswer(a, b []byte) error {
	type matrix struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	var x, y matrix
	if err := errors.Join(json.Unmarshal(a, &x), json.Unmarshal(b, &y)); err != nil {
		return err
	}
	if len(x.Data.Result) != len(y.Data.Result) {
		return fmt.Errorf("%d series against %d", len(x.Data.Result), len(y.Data.Result))
	}
	for i, s := range x.Data.Result {
		t := y.Data.Result[i]
		if fmt.Sprint(s.Metric) != fmt.Sprint(t.Metric) || len(s.Values) != len(t.Values) {
			return fmt.Errorf("series %d: %v (%d points) against %v (%d points)", i, s.Metric, len(s.Values), t.Metric, len(t.Values))
		}
		for j, p := range s.Values {
			q := t.Values[j]
			v, _ := strconv.ParseFloat(p[1].(string), 64)
			w, _ := strconv.ParseFloat(q[1].(string), 64)
			if p[0] != q[0] || math.Abs(v-w) > 1e-9*math.Max(math.Abs(v), math.Abs(w)) {
				return fmt.Errorf("series %v point %d: %v against %v", s.Metric, j, p, q)
			}
		}
	}
	return nil
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcess(c config, name, bin string, args []string, ready string) (*process, error) {
	logf("starting %s", name)
	logFile, err := os.OpenFile(filepath.Join(c.work, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start-up; see %s", name, logFile.Name())
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready after 5m", name)
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// dropCaches empties the OS page cache, so "cold" reads the disk; it
// reports whether the kernel allowed it (containers often do not).
func dropCaches() bool {
	_ = exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200) == nil
}

func copyBlocks(from, to string) error {
	ms, err := filepath.Glob(filepath.Join(from, "*", "meta.json"))
	if err != nil {
		return err
	}
	for _, m := range ms {
		src := filepath.Dir(m)
		dst := filepath.Join(to, filepath.Base(src))
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func countBlocks(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	return len(m)
}

// liveBlocks lists the block directories of a tenant's bucket prefix that
// carry no deletion mark.
func liveBlocks(dir string) []string {
	ms, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	var out []string
	for _, m := range ms {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), layout.DeletionMarkFilename)); err == nil {
			continue
		}
		out = append(out, filepath.Dir(m))
	}
	return out
}

// blockBytes sums the sizes of the block files (index, chunks, meta) under
// dir: what keeping the data costs, without WAL or caches.
func blockBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "wal" || name == "chunks_head" {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func apiTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}
