package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is loadgen's result; -json prints it as is.
type report struct {
	Name        string  `json:"name"`
	URL         string  `json:"url"`
	Workload    string  `json:"workload"`
	Unit        string  `json:"unit"`
	Series      int     `json:"series"`
	Batch       int     `json:"batch"`
	Requests    int     `json:"requests_per_round"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"` // requested items/s; 0: as fast as accepted

	// Creation is the warm-up round, which creates every series.
	Creation phase `json:"series_creation"`
	// Steady is the measured window after it.
	Steady phase   `json:"steady"`
	Rounds float64 `json:"rounds"`

	TargetRSSStart          int64   `json:"target_rss_start_bytes,omitempty"`
	TargetRSS               int64   `json:"target_rss_bytes,omitempty"`
	TargetRSSHWM            int64   `json:"target_rss_hwm_bytes,omitempty"`
	TargetRSSPerSeries      float64 `json:"target_rss_bytes_per_series,omitempty"`
	TargetRSSDeltaPerSeries float64 `json:"target_rss_growth_bytes_per_series,omitempty"`
	GeneratorRSS            int64   `json:"generator_rss_bytes,omitempty"`
	Profile                 string  `json:"profile,omitempty"`
}

type phase struct {
	Seconds            float64           `json:"seconds"`
	Requests           int64             `json:"requests"`
	Sent               int64             `json:"sent"`
	Accepted           int64             `json:"accepted"`
	AcceptedPerSecond  float64           `json:"accepted_per_second"`
	Errors             map[string]int64  `json:"errors,omitempty"` // by HTTP status, or "transport"
	FirstErrors        map[string]string `json:"first_errors,omitempty"`
	LatencyP50Ms       float64           `json:"latency_p50_ms"`
	LatencyP90Ms       float64           `json:"latency_p90_ms"`
	LatencyP99Ms       float64           `json:"latency_p99_ms"`
	LatencyMaxMs       float64           `json:"latency_max_ms"`
	BytesSent          int64             `json:"bytes_sent"`
	BytesPerItem       float64           `json:"bytes_per_item"` // compressed, on the wire
	TargetCPU          float64           `json:"target_cpu_seconds,omitempty"`
	TargetCPUPerMil    float64           `json:"target_cpu_seconds_per_million,omitempty"`
	TargetCores        float64           `json:"target_cores,omitempty"`
	GeneratorCPU       float64           `json:"generator_cpu_seconds"`
	GeneratorCPUPerMil float64           `json:"generator_cpu_seconds_per_million"`
	GeneratorCPUShare  float64           `json:"generator_cpu_share,omitempty"` // of generator + target CPU
}

func (r *report) print(w io.Writer) {
	rate := "as fast as accepted"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f %s/s requested", r.Rate, r.Unit)
	}
	fmt.Fprintf(w, "%s (%s): %s, %d series in %d requests of %d, concurrency %d, %s\n",
		r.Name, r.URL, r.Workload, r.Series, r.Requests, r.Batch, r.Concurrency, rate)
	c := r.Creation
	fmt.Fprintf(w, "series creation   %.2fs (%.0f series/s accepted), p50 %.1fms p99 %.1fms", c.Seconds, c.AcceptedPerSecond, c.LatencyP50Ms, c.LatencyP99Ms)
	if c.TargetCPU > 0 {
		fmt.Fprintf(w, ", target CPU %.2fs", c.TargetCPU)
	}
	fmt.Fprintf(w, ", errors: %s\n", errorsString(c))
	s := r.Steady
	fmt.Fprintf(w, "steady window     %.1fs, %d requests, %.2f rounds\n", s.Seconds, s.Requests, r.Rounds)
	fmt.Fprintf(w, "accepted          %.0f %s/s (%d of %d sent)\n", s.AcceptedPerSecond, r.Unit, s.Accepted, s.Sent)
	fmt.Fprintf(w, "errors            %s\n", errorsString(s))
	fmt.Fprintf(w, "push latency      p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms\n", s.LatencyP50Ms, s.LatencyP90Ms, s.LatencyP99Ms, s.LatencyMaxMs)
	if s.TargetCPU > 0 || r.TargetRSS > 0 {
		fmt.Fprintf(w, "target CPU        %.3f s per million %s (%.2f cores)\n", s.TargetCPUPerMil, r.Unit, s.TargetCores)
		fmt.Fprintf(w, "target RSS        %.1f MiB = %.0f bytes per active series (growth %.0f, HWM %.1f MiB)\n",
			float64(r.TargetRSS)/(1<<20), r.TargetRSSPerSeries, r.TargetRSSDeltaPerSeries, float64(r.TargetRSSHWM)/(1<<20))
	}
	fmt.Fprintf(w, "generator CPU     %.3f s per million %s", s.GeneratorCPUPerMil, r.Unit)
	if s.GeneratorCPUShare > 0 {
		fmt.Fprintf(w, " (%.1f%% of generator+target CPU)", 100*s.GeneratorCPUShare)
	}
	fmt.Fprintf(w, ", RSS %.1f MiB\n", float64(r.GeneratorRSS)/(1<<20))
	fmt.Fprintf(w, "wire              %.1f bytes per %s (snappy)\n", s.BytesPerItem, strings.TrimSuffix(r.Unit, "s"))
	if r.Profile != "" {
		fmt.Fprintf(w, "profile           %s\n", r.Profile)
	}
}

func errorsString(p phase) string {
	if len(p.Errors) == 0 {
		return "none"
	}
	var keys []string
	for k := range p.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d (%q)", k, p.Errors[k], p.FirstErrors[k]))
	}
	return strings.Join(parts, ", ")
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// show prints -json reports as text.
func show(args []string) error {
	for _, p := range args {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		r.print(os.Stdout)
	}
	return nil
}

// compare prints -json reports side by side, with the ratio of the first
// to each of the others.
func compare(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: loadgen compare A.json B.json [C.json ...]")
	}
	rs := make([]*report, len(args))
	for i, p := range args {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		rs[i] = r
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "\t"
	for _, r := range rs {
		head += r.Name + "\t"
	}
	for _, r := range rs[1:] {
		head += rs[0].Name + "/" + r.Name + "\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name, format string, v func(r *report) float64) {
		line := name + "\t"
		for _, r := range rs {
			line += fmt.Sprintf(format, v(r)) + "\t"
		}
		for _, r := range rs[1:] {
			if y := v(r); y != 0 {
				line += fmt.Sprintf("%.2f", v(rs[0])/y) + "\t"
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	line := "workload\t"
	for _, r := range rs {
		line += r.Workload + "\t"
	}
	fmt.Fprintln(tw, line)
	row("active series", "%.0f", func(r *report) float64 { return float64(r.Series) })
	row("series creation (s)", "%.2f", func(r *report) float64 { return r.Creation.Seconds })
	row("accepted samples/s", "%.0f", func(r *report) float64 { return r.Steady.AcceptedPerSecond })
	row("failed requests", "%.0f", func(r *report) float64 { return float64(sum(r.Steady.Errors)) })
	row("push p50 (ms)", "%.1f", func(r *report) float64 { return r.Steady.LatencyP50Ms })
	row("push p90 (ms)", "%.1f", func(r *report) float64 { return r.Steady.LatencyP90Ms })
	row("push p99 (ms)", "%.1f", func(r *report) float64 { return r.Steady.LatencyP99Ms })
	row("CPU s / million samples", "%.3f", func(r *report) float64 { return r.Steady.TargetCPUPerMil })
	row("cores used", "%.2f", func(r *report) float64 { return r.Steady.TargetCores })
	row("RSS (MiB)", "%.1f", func(r *report) float64 { return float64(r.TargetRSS) / (1 << 20) })
	row("RSS bytes / series", "%.0f", func(r *report) float64 { return r.TargetRSSPerSeries })
	row("RSS growth bytes / series", "%.0f", func(r *report) float64 { return r.TargetRSSDeltaPerSeries })
	row("generator CPU share (%)", "%.1f", func(r *report) float64 { return 100 * r.Steady.GeneratorCPUShare })
	return tw.Flush()
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
