// Command rwpush sends one remote write 1.0 request with a single sample to a
// Canopy, for smoke tests: rwpush -url http://localhost:9009/api/v1/push -metric up -value 1.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func main() {
	url := flag.String("url", "http://localhost:9009/api/v1/push", "remote write URL")
	metric := flag.String("metric", "canopy_smoke", "metric name")
	value := flag.Float64("value", 1, "sample value")
	tenant := flag.String("tenant", "", "X-Scope-OrgID")
	flag.Parse()
	req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: *metric}, {Name: "job", Value: "rwpush"}},
		Samples: []prompb.Sample{{Value: *value, Timestamp: time.Now().UnixMilli()}},
	}}}
	raw, err := req.Marshal()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hreq, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(snappy.Encode(nil, raw)))
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	if *tenant != "" {
		hreq.Header.Set("X-Scope-OrgID", *tenant)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Println(resp.Status, string(body))
	if resp.StatusCode/100 != 2 {
		os.Exit(1)
	}
}
