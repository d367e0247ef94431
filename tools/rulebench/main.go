// Command rulebench measures rule evaluation: Canopy's ruler and a real
// Prometheus 3 evaluate the same recording rules over the same samples,
// pushed to both by remote write, in the same run. It reports, per
// minute, the rule evaluations each made and how many failed, the
// iterations they missed, the time a full round of groups took, and the
// CPU seconds each process used; and it checks that both recorded the
// same values.
//
//	go run ./tools/rulebench -canopy bin/canopy -prometheus $(bash tools/prometheus3.sh)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

type config struct {
	canopy, prometheus string
	rules, perGroup    int
	series             int
	warmup, window     time.Duration
	work               string
}

func main() {
	var c config
	flag.StringVar(&c.canopy, "canopy", "bin/canopy", "Canopy binary.")
	flag.StringVar(&c.prometheus, "prometheus", "", "Prometheus server binary; empty measures Canopy only.")
	flag.IntVar(&c.rules, "rules", 10000, "Recording rules.")
	flag.IntVar(&c.perGroup, "per-group", 100, "Rules per group.")
	flag.IntVar(&c.series, "series", 10000, "Series of the counter x the rules read.")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Minute, "Time before measuring (every group evaluated at least once).")
	flag.DurationVar(&c.window, "window", 3*time.Minute, "Measurement window.")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "rulebench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// groups returns the rule groups: rule j of group g records
// sum by (job) (rate(x{group="g"}[5m])) * (j+1), which reads the group's
// share of the series.
func groups(c config) []string {
	var out []string
	for g := 0; g*c.perGroup < c.rules; g++ {
		var b strings.Builder
		fmt.Fprintf(&b, "name: g%d\ninterval: 1m\nrules:\n", g)
		for j := 0; j < c.perGroup && g*c.perGroup+j < c.rules; j++ {
			fmt.Fprintf(&b, "  - record: rule_%d\n    expr: sum by (job) (rate(x{group=\"g%d\"}[5m])) * %d\n", g*c.perGroup+j, g%100, j+1)
		}
		out = append(out, b.String())
	}
	return out
}

type proc struct {
	name string
	cmd  *exec.Cmd
	base string
}

func start(c config, name, bin string, args []string, ready string) (*proc, error) {
	logf("starting %s", name)
	lf, err := os.Create(filepath.Join(c.work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s not ready; see %s", name, lf.Name())
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// cpu returns the CPU seconds the process used so far.
func (p *proc) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rss returns the process's peak resident memory in MiB.
func (p *proc) rss() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// pushLoop writes every series' next sample to each URL every 15s.
func pushLoop(c config, urls []string, stop <-chan struct{}) {
	var v float64
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		v += 15
		now := time.Now().UnixMilli()
		req := prompb.WriteRequest{}
		for i := range c.series {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "x"}, {Name: "group", Value: fmt.Sprintf("g%d", i%100)},
					{Name: "instance", Value: fmt.Sprintf("i%d", i/100)}, {Name: "job", Value: fmt.Sprintf("j%d", i%10)}},
				Samples: []prompb.Sample{{Timestamp: now, Value: v * float64(1+i%7)}},
			})
		}
		raw, _ := req.Marshal()
		body := snappy.Encode(nil, raw)
		for _, u := range urls {
			hr, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
			hr.Header.Set("Content-Encoding", "snappy")
			hr.Header.Set("Content-Type", "application/x-protobuf")
			hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
			if resp, err := http.DefaultClient.Do(hr); err != nil {
				logf("push to %s: %v", u, err)
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					logf("push to %s: HTTP %d", u, resp.StatusCode)
				}
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// metric sums the samples of a metric family (name exact, labels any)
// in a /metrics page.
func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

// query returns the value of an instant query's single sample at time at
// (seconds; "" for now).
func query(api, q, at string) (string, error) {
	form := url.Values{"query": {q}}
	if at != "" {
		form.Set("time", at)
	}
	resp, err := http.Get(api + "/api/v1/query?" + form.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if len(r.Data.Result) == 0 {
		return "", fmt.Errorf("no result for %s", q)
	}
	return fmt.Sprint(r.Data.Result[0].Value[1]), nil
}

type side struct {
	p                       *proc
	metrics, api, prefix    string
	evals0, fails0, missed0 float64
	cpu0                    float64
}

func (s *side) mark() {
	s.evals0 = metric(s.metrics, s.prefix+"prometheus_rule_evaluations_total")
	s.fails0 = metric(s.metrics, s.prefix+"prometheus_rule_evaluation_failures_total")
	s.missed0 = metric(s.metrics, s.prefix+"prometheus_rule_group_iterations_missed_total")
	s.cpu0 = s.p.cpu()
}

func (s *side) report(window time.Duration) {
	mins := window.Minutes()
	evals := (metric(s.metrics, s.prefix+"prometheus_rule_evaluations_total") - s.evals0) / mins
	fails := (metric(s.metrics, s.prefix+"prometheus_rule_evaluation_failures_total") - s.fails0) / mins
	missed := metric(s.metrics, s.prefix+"prometheus_rule_group_iterations_missed_total") - s.missed0
	round := metric(s.metrics, s.prefix+"prometheus_rule_group_last_duration_seconds")
	cpu := (s.p.cpu() - s.cpu0) / mins
	fmt.Printf("| %s | %.0f | %.0f | %.0f | %.2f s | %.1f | %.0f MiB |\n", s.p.name, evals, fails, missed, round, cpu, s.p.rss())
}

func run(c config) error {
	var err error
	if c.work, err = os.MkdirTemp("", "rulebench-"); err != nil {
		return err
	}
	defer os.RemoveAll(c.work)
	gs := groups(c)
	logf("%d rules in %d groups over %d series", c.rules, len(gs), c.series)

	var sides []*side
	var pushURLs []string
	if c.prometheus != "" {
		rf := filepath.Join(c.work, "rules.yml")
		var b strings.Builder
		b.WriteString("groups:\n")
		for _, g := range gs {
			for i, line := range strings.Split(strings.TrimRight(g, "\n"), "\n") {
				if i == 0 {
					b.WriteString("  - " + line + "\n")
				} else {
					b.WriteString("    " + line + "\n")
				}
			}
		}
		if err := os.WriteFile(rf, []byte(b.String()), 0o644); err != nil {
			return err
		}
		cf := filepath.Join(c.work, "prometheus.yml")
		if err := os.WriteFile(cf, []byte("global:\n  evaluation_interval: 1m\nrule_files: ["+rf+"]\n"), 0o644); err != nil {
			return err
		}
		port := freePort()
		p, err := start(c, "prometheus", c.prometheus, []string{"--config.file=" + cf, "--storage.tsdb.path=" + filepath.Join(c.work, "prom"),
			"--web.listen-address=127.0.0.1:" + port, "--web.enable-remote-write-receiver"}, "http://127.0.0.1:"+port+"/-/ready")
		if err != nil {
			return err
		}
		defer p.stop()
		base := "http://127.0.0.1:" + port
		sides = append(sides, &side{p: p, metrics: base, api: base})
		pushURLs = append(pushURLs, base+"/api/v1/write")
	}
	port, grpc := freePort(), freePort()
	cp, err := start(c, "canopy", c.canopy, []string{"-data-dir=" + filepath.Join(c.work, "canopy"), "-server.http-listen-port=" + port,
		"-server.grpc-listen-port=" + grpc, "-ruler.poll-interval=10s", "-ingester.signals=metrics", "-memberlist.bind-port=" + freePort()},
		"http://127.0.0.1:"+port+"/ready")
	if err != nil {
		return err
	}
	defer cp.stop()
	cbase := "http://127.0.0.1:" + port
	for _, g := range gs {
		resp, err := http.Post(cbase+"/prometheus/config/v1/rules/bench", "application/yaml", strings.NewReader(g))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("uploading a group: HTTP %d", resp.StatusCode)
		}
	}
	sides = append(sides, &side{p: cp, metrics: cbase, api: cbase + "/prometheus", prefix: "canopy_ruler_"})
	pushURLs = append(pushURLs, cbase+"/api/v1/push")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); pushLoop(c, pushURLs, stop) }()
	defer func() { close(stop); wg.Wait() }()
	logf("warming up for %s", c.warmup)
	time.Sleep(c.warmup)
	for _, s := range sides {
		s.mark()
	}
	logf("measuring for %s", c.window)
	time.Sleep(c.window)
	fmt.Printf("machine: %d cores; %d recording rules in %d groups (interval 1m) over %d series, samples every 15s, measured over %s\n\n",
		numCPU(), c.rules, len(gs), c.series, c.window)
	fmt.Println("| system | rule evaluations/min | failures/min | iterations missed | one round of every group (sum of last durations) | CPU s/min | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, s := range sides {
		s.report(c.window)
	}
	if len(sides) == 2 {
		// The value Canopy recorded for a rule at its last evaluation
		// equals what Prometheus computes from the same samples at that
		// time.
		prom, can := sides[0], sides[1]
		fmt.Println()
		for _, r := range []int{0, c.rules / 2, c.rules - 1} {
			at, err := query(can.api, fmt.Sprintf("max(timestamp(rule_%d))", r), "")
			if err != nil {
				return err
			}
			recorded, err := query(can.api, fmt.Sprintf("sum(rule_%d)", r), at)
			if err != nil {
				return err
			}
			g, j := r/c.perGroup, r%c.perGroup
			want, err := query(prom.api, fmt.Sprintf("sum(sum by (job) (rate(x{group=\"g%d\"}[5m])) * %d)", g%100, j+1), at)
			if err != nil {
				return err
			}
			same := "equal"
			if recorded != want {
				same = "DIFFERENT"
			}
			fmt.Printf("rule_%d at %s: Canopy recorded %s, Prometheus computes %s from the same samples: %s\n", r, at, recorded, want, same)
		}
	}
	return nil
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
