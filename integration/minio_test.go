package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/s3"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
)

const (
	minioUser     = "canopy"
	minioPassword = "canopy-secret-key"
	minioBucket   = "canopy-it"
)

// minioBin finds the pinned MinIO that tools/install-peers.sh installs.
func minioBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(string(trimNL(gopath)), "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("minio not installed: run `make peers` (tools/install-peers.sh installs the pinned version)")
	return ""
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

type minioServer struct {
	*process
	addr string
}

func startMinIO(t *testing.T, logs string) *minioServer {
	t.Helper()
	ports := freePorts(t, 2)
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p := newProcess(t, logs, "minio", minioBin(t), "server", filepath.Join(t.TempDir(), "minio"),
		"--address", addr, "--console-address", "127.0.0.1:"+strconv.Itoa(ports[1]), "--quiet")
	p.env = []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioPassword, "MINIO_BROWSER=off"}
	m := &minioServer{process: p, addr: addr}
	m.start(t)
	return m
}

func (m *minioServer) start(t *testing.T) {
	t.Helper()
	m.process.start(t)
	eventually(t, 60*time.Second, 200*time.Millisecond, "minio ready", func() error {
		code, _, err := httpGet("http://"+m.addr+"/minio/health/ready", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
}

func (m *minioServer) makeBucket(t *testing.T) {
	t.Helper()
	cl, err := minio.New(m.addr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioPassword, ""), Secure: false})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.MakeBucket(context.Background(), minioBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (m *minioServer) bucket(t *testing.T) objstore.Bucket {
	t.Helper()
	cfg := s3.DefaultConfig
	cfg.Endpoint, cfg.Bucket, cfg.AccessKey, cfg.SecretKey, cfg.Insecure = m.addr, minioBucket, minioUser, minioPassword, true
	b, err := s3.NewBucketWithConfig(log.NewNopLogger(), cfg, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (m *minioServer) canopyFlags() []string {
	return []string{
		"-bucket.backend=s3", "-bucket.s3.endpoint=" + m.addr, "-bucket.s3.bucket-name=" + minioBucket,
		"-bucket.s3.access-key-id=" + minioUser, "-bucket.s3.secret-access-key=" + minioPassword, "-bucket.s3.insecure",
	}
}

// bucketSamples downloads every complete block of a tenant and returns its
// samples by series: what the bucket would answer for the tenant.
func bucketSamples(t *testing.T, bkt objstore.Bucket, tenant string) map[string]map[int64]float64 {
	t.Helper()
	ctx := context.Background()
	tb := metricsblocks.TenantBucket(bkt, tenant)
	x, scan, err := metricsblocks.UpdateBucketIndex(ctx, tb, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(scan.Corrupt) > 0 {
		t.Fatalf("corrupt blocks in the bucket: %v", scan.Corrupt)
	}
	out := map[string]map[int64]float64{}
	marked := x.DeletionMarked()
	for _, b := range x.Blocks {
		if _, ok := marked[b.ID]; ok {
			continue // replaced by a compacted block
		}
		dir := filepath.Join(t.TempDir(), b.ID.String())
		if err := objstore.DownloadDir(ctx, log.NewNopLogger(), tb, b.ID.String(), b.ID.String(), dir); err != nil {
			t.Fatal(err)
		}
		blk, err := tsdb.OpenBlock(nil, dir, nil, nil)
		if err != nil {
			t.Fatalf("block %s: %v", b.ID, err)
		}
		q, err := tsdb.NewBlockQuerier(blk, b.MinTime, b.MaxTime)
		if err != nil {
			t.Fatal(err)
		}
		ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		for ss.Next() {
			k := ss.At().Labels().Get("series")
			if out[k] == nil {
				out[k] = map[int64]float64{}
			}
			it := ss.At().Iterator(nil)
			for it.Next() != chunkenc.ValNone {
				ts, v := it.At()
				if old, ok := out[k][ts]; ok && old != v {
					t.Errorf("series %s at %d: %v in one block, %v in another", k, ts, old, v)
				}
				out[k][ts] = v
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
		_ = q.Close()
		_ = blk.Close()
	}
	return out
}

// TestMinIOShippingSurvivesOutage runs Canopy on a real S3 server (MinIO):
// MinIO is stopped while the ingester holds data, the flush fails and writes
// go on, MinIO comes back, and every acknowledged sample ends up in the
// bucket exactly as written; the compactor then builds the bucket index.
func TestMinIOShippingSurvivesOutage(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	m := startMinIO(t, logs)
	m.makeBucket(t)
	flags := append([]string{"-ingester.replication-factor=1", "-ingester.ship-interval=1s", "-auth.multitenancy-enabled",
		"-querier.query-store-after=0", "-querier.bucket-index-ttl=1s"}, m.canopyFlags()...)
	node := newCanopyNodes(t, logs, 1, flags...)[0]
	node.start(t)
	node.waitReady(t, 60*time.Second)
	const tenant = "minio-tenant"

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UnixMilli()
	want := map[string]map[int64]float64{}
	push := func(k int) {
		ts := base + int64(k)*15_000
		mustPushV1(t, node.url(), tenant, loadRequest(k, ts))
		for i := 0; i < loadSeries; i++ {
			s := loadSeriesName(i)
			if want[s] == nil {
				want[s] = map[int64]float64{}
			}
			want[s][ts] = loadValue(i, k)
		}
	}
	for k := 0; k < 20; k++ {
		push(k)
	}

	// Outage: MinIO stops; the flush cuts blocks but cannot upload them.
	if !m.signalAndWait(syscall.SIGTERM, 20*time.Second) {
		t.Fatal("minio did not stop")
	}
	start := time.Now()
	r, err := doTimeout(5*time.Minute, http.MethodPost, node.url()+"/ingester/flush", "", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusInternalServerError {
		t.Fatalf("flush during the outage: %s, want 500", r)
	}
	t.Logf("flush during the outage took %s: %s", time.Since(start).Round(time.Millisecond), r.body)
	// Writes go on during the outage (newer samples, into the new head).
	for k := 20; k < 40; k++ {
		push(k)
	}

	// MinIO is back: the periodic shipper and a final flush ship it all.
	m.start(t)
	r, err = doTimeout(5*time.Minute, http.MethodPost, node.url()+"/ingester/flush", "", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusOK {
		t.Fatalf("flush after the outage: %s", r)
	}
	var fr struct {
		BlocksShipped int `json:"blocks_shipped"`
	}
	_ = json.Unmarshal(r.body, &fr)
	t.Logf("flush after the outage: %s", r.body)

	bkt := m.bucket(t)
	checkBucket(t, bucketSamples(t, bkt, tenant), want)
	t.Logf("bucket holds all %d acknowledged samples of %d series", 40*loadSeries, len(want))

	// The compactor (inside the single process) writes the bucket index;
	// what it compacted still holds exactly the same samples.
	r, err = doTimeout(5*time.Minute, http.MethodPost, node.url()+"/compactor/run", "", "", nil, nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("compactor run: %v %s", err, r)
	}
	x, err := layout.ReadBucketIndex(context.Background(), metricsblocks.TenantBucket(bkt, tenant))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Blocks) == 0 {
		t.Fatal("bucket index lists no blocks")
	}
	t.Logf("bucket index after compaction: %d blocks, %d deletion marks", len(x.Blocks), len(x.DeletionMarks))
	for _, b := range x.Blocks {
		t.Logf("  block %s [%d, %d) level %d from %s, %d samples", b.ID, b.MinTime, b.MaxTime, b.Level, b.Source, b.Samples)
	}
	checkBucket(t, bucketSamples(t, bkt, tenant), want)

	// The node restarts with an empty disk: every sample now comes back
	// from MinIO through the store-gateway.
	node.terminate(t, 60*time.Second)
	if err := os.RemoveAll(node.dataDir); err != nil {
		t.Fatal(err)
	}
	node.start(t)
	node.waitReady(t, 60*time.Second)
	a := api{base: node.url() + "/prometheus", tenant: tenant}
	var got []series
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _, err = a.query(http.MethodGet, loadMetric+"[2h]", base+40*15_000)
		if (err == nil && len(got) == len(want)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]map[int64]float64{}
	for _, s := range got {
		pts := map[int64]float64{}
		for _, p := range s.Points {
			v, err := strconv.ParseFloat(p.V, 64)
			if err != nil {
				t.Fatal(err)
			}
			pts[p.T] = v
		}
		read[s.Labels["series"]] = pts
	}
	checkBucket(t, read, want)
	t.Logf("after wiping the node's disk, all %d samples read back from MinIO through the store-gateway", 40*loadSeries)
}

func checkBucket(t *testing.T, got, want map[string]map[int64]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("bucket has %d series, want %d", len(got), len(want))
	}
	missing := 0
	for s, pts := range want {
		for ts, v := range pts {
			if gv, ok := got[s][ts]; !ok || gv != v {
				missing++
				if missing < 5 {
					t.Errorf("series %s at %d: bucket has %v (present %v), want %v", s, ts, gv, ok, v)
				}
			}
		}
		if len(got[s]) != len(pts) {
			t.Errorf("series %s: %d samples in the bucket, %d written", s, len(got[s]), len(pts))
		}
	}
}
