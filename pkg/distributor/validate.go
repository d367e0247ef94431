package distributor

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/canopy-observability/canopy/pkg/util/strutil"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Validation reasons, used in metrics and responses.
const (
	reasonMissingName    = "missing_metric_name"
	reasonBadName        = "invalid_label_name"
	reasonBadValue       = "invalid_label_value"
	reasonDupLabel       = "duplicate_label_names"
	reasonTooManyLabels  = "max_label_names_per_series"
	reasonNameTooLong    = "label_name_too_long"
	reasonValueTooLong   = "label_value_too_long"
	reasonTooFarInFuture = "too_far_in_future"
	reasonTooOld         = "too_old"
	reasonBadSymbol      = "invalid_symbol_reference"
	reasonNoSamples      = "no_samples"
	reasonMixedSamples   = "floats_and_histograms_in_one_series"
	reasonBadHistogram   = "invalid_native_histogram"
)

// validationResult accumulates what validation dropped from one request.
type validationResult struct {
	droppedSamples   int
	droppedExemplars int
	droppedSeries    int
	reasons          map[string]int
	firstError       string
}

func (r *validationResult) drop(reason, msg string, samples int) {
	if r.reasons == nil {
		r.reasons = map[string]int{}
	}
	r.reasons[reason] += samples
	r.droppedSamples += samples
	if r.firstError == "" {
		r.firstError = msg
	}
}

// validateRequest checks every series of req in place against limits and
// removes what fails. Labels are checked straight from the symbol table:
// no label sets are built. now is in milliseconds.
func validateRequest(req *writev2.Request, l *validation.Limits, now int64) validationResult {
	var res validationResult
	kept := req.Timeseries[:0]
	maxT := now + time.Duration(l.CreationGracePeriod).Milliseconds()
	minT := int64(0)
	checkOld := l.PastGracePeriod > 0
	if checkOld {
		minT = now - time.Duration(l.PastGracePeriod).Milliseconds()
	}
	// Symbols are checked for UTF-8 once each, not at every use: a 2.0
	// request names each string once for all its series.
	allUTF8 := true
	for _, s := range req.Symbols {
		if !utf8.ValidString(s) {
			allUTF8 = false
			break
		}
	}
	for i := range req.Timeseries {
		ts := req.Timeseries[i]
		n := len(ts.Samples) + len(ts.Histograms)
		if reason, msg := validateLabels(&ts, req.Symbols, allUTF8, l); reason != "" {
			res.drop(reason, msg, n)
			res.droppedSeries++
			res.droppedExemplars += len(ts.Exemplars)
			continue
		}
		if n == 0 {
			// A metadata-only series (remote write 1.0 sends metadata apart
			// from samples): kept so the metadata reaches an ingester.
			ts.Exemplars = nil
			kept = append(kept, ts)
			continue
		}
		if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
			res.drop(reasonMixedSamples, fmt.Sprintf("series %s has both float samples and histogram samples", seriesString(&ts, req.Symbols)), n)
			res.droppedSeries++
			continue
		}
		// Drop samples outside the accepted time range, keeping the rest.
		if len(ts.Samples) > 0 {
			out := ts.Samples[:0]
			for _, s := range ts.Samples {
				if r, msg := checkTime(s.Timestamp, minT, maxT, checkOld, l, &ts, req.Symbols); r != "" {
					res.drop(r, msg, 1)
					continue
				}
				out = append(out, s)
			}
			ts.Samples = out
		}
		if len(ts.Histograms) > 0 {
			out := ts.Histograms[:0]
			for _, h := range ts.Histograms {
				if r, msg := checkTime(h.Timestamp, minT, maxT, checkOld, l, &ts, req.Symbols); r != "" {
					res.drop(r, msg, 1)
					continue
				}
				if err := validHistogram(h); err != nil {
					res.drop(reasonBadHistogram, fmt.Sprintf("series %s: invalid native histogram: %v", seriesString(&ts, req.Symbols), err), 1)
					continue
				}
				out = append(out, h)
			}
			ts.Histograms = out
		}
		ts.Exemplars = validExemplars(ts.Exemplars, req.Symbols, l, &res)
		if len(ts.Samples)+len(ts.Histograms) == 0 {
			res.droppedSeries++
			continue
		}
		if int(ts.Metadata.HelpRef) < len(req.Symbols) && len(req.Symbols[ts.Metadata.HelpRef]) > l.MaxMetadataLength ||
			int(ts.Metadata.UnitRef) < len(req.Symbols) && len(req.Symbols[ts.Metadata.UnitRef]) > l.MaxMetadataLength {
			ts.Metadata = writev2.Metadata{Type: ts.Metadata.Type}
		}
		kept = append(kept, ts)
	}
	// Clear the tail so dropped series can be collected.
	for i := len(kept); i < len(req.Timeseries); i++ {
		req.Timeseries[i] = writev2.TimeSeries{}
	}
	req.Timeseries = kept
	return res
}

func checkTime(t, minT, maxT int64, checkOld bool, l *validation.Limits, ts *writev2.TimeSeries, symbols []string) (string, string) {
	if t > maxT {
		return reasonTooFarInFuture, fmt.Sprintf("sample at %s for series %s is too far in the future (more than -validation.create-grace-period=%s ahead)", time.UnixMilli(t).UTC().Format(time.RFC3339), seriesString(ts, symbols), l.CreationGracePeriod)
	}
	if checkOld && t < minT {
		return reasonTooOld, fmt.Sprintf("sample at %s for series %s is too old (older than -validation.past-grace-period=%s)", time.UnixMilli(t).UTC().Format(time.RFC3339), seriesString(ts, symbols), l.PastGracePeriod)
	}
	return "", ""
}

func validHistogram(h writev2.Histogram) error {
	if err := bucketsInRange(h.Schema, h.PositiveSpans); err != nil {
		return fmt.Errorf("positive buckets: %w", err)
	}
	if err := bucketsInRange(h.Schema, h.NegativeSpans); err != nil {
		return fmt.Errorf("negative buckets: %w", err)
	}
	if h.IsFloatHistogram() {
		return h.ToFloatHistogram().Validate()
	}
	return h.ToIntHistogram().Validate()
}

// bucketsInRange checks that every bucket of an exponential schema has
// finite bounds: bucket i's upper bound is 2^(i·2^-schema), beyond float64
// from |i| > 1024·2^schema. (An OTLP histogram of scale 20 with offsets of
// ±2e9, downscaled to schema 8, was stored as buckets [-Inf,-Inf] and [0,0].)
// Custom-bucket schemas carry their bounds and are left to Validate.
func bucketsInRange(schema int32, spans []writev2.BucketSpan) error {
	if schema < histogram.ExponentialSchemaMin || schema > histogram.ExponentialSchemaMax {
		return nil
	}
	limit := int64(1024)
	if schema >= 0 {
		limit <<= schema
	} else {
		limit >>= -schema
	}
	var idx int64
	for n, sp := range spans {
		idx += int64(sp.Offset)
		first, last := idx, idx+int64(sp.Length)-1
		if sp.Length > 0 && (first < -limit || last > limit) {
			return fmt.Errorf("span %d covers bucket indexes %d to %d; schema %d has finite bucket bounds only for indexes within ±%d", n, first, last, schema, limit)
		}
		idx += int64(sp.Length)
	}
	return nil
}

func validExemplars(es []writev2.Exemplar, symbols []string, l *validation.Limits, res *validationResult) []writev2.Exemplar {
	out := es[:0]
	for _, e := range es {
		if len(out) >= l.MaxExemplarsPerSeries {
			res.droppedExemplars++
			continue
		}
		if len(e.LabelsRefs)%2 != 0 {
			res.droppedExemplars++
			continue
		}
		runes := 0
		ok := true
		for _, r := range e.LabelsRefs {
			if int(r) >= len(symbols) || !utf8.ValidString(symbols[r]) {
				ok = false
				break
			}
			runes += utf8.RuneCountInString(symbols[r])
		}
		if !ok || runes > exemplar.ExemplarMaxLabelSetLength {
			res.droppedExemplars++
			continue
		}
		out = append(out, e)
	}
	return out
}

// validateLabels checks a series' labels, sorting them by name if the sender
// did not. It returns a reason and message when the series must be dropped.
// validateLabels checks a series' labels; allUTF8 says every symbol is
// known to be valid UTF-8.
func validateLabels(ts *writev2.TimeSeries, symbols []string, allUTF8 bool, l *validation.Limits) (string, string) {
	refs := ts.LabelsRefs
	if len(refs)%2 != 0 {
		return reasonBadSymbol, "series has an odd number of label references"
	}
	for _, r := range refs {
		if int(r) >= len(symbols) {
			return reasonBadSymbol, fmt.Sprintf("series references symbol %d, but the request has only %d symbols", r, len(symbols))
		}
	}
	n := len(refs) / 2
	if n > l.MaxLabelNamesPerSeries {
		return reasonTooManyLabels, fmt.Sprintf("series %s has %d labels, more than the limit of %d (-validation.max-label-names-per-series)", seriesString(ts, symbols), n, l.MaxLabelNamesPerSeries)
	}
	if !refsSorted(refs, symbols) {
		sort.Sort(labelRefs{refs, symbols})
	}
	hasName := false
	for i := 0; i < len(refs); i += 2 {
		name, value := symbols[refs[i]], symbols[refs[i+1]]
		if i > 0 && symbols[refs[i-2]] == name {
			return reasonDupLabel, fmt.Sprintf("series %s has label %q more than once", seriesString(ts, symbols), name)
		}
		if name == "" || !allUTF8 && !utf8.ValidString(name) {
			return reasonBadName, fmt.Sprintf("series %s has an invalid label name %q (must be non-empty UTF-8)", seriesString(ts, symbols), name)
		}
		if len(name) > l.MaxLabelNameLength {
			return reasonNameTooLong, fmt.Sprintf("series %s has a label name of %d bytes, longer than the limit of %d (-validation.max-length-label-name)", seriesString(ts, symbols), len(name), l.MaxLabelNameLength)
		}
		if !allUTF8 && !utf8.ValidString(value) {
			return reasonBadValue, fmt.Sprintf("series %s has label %q with a value that is not valid UTF-8", seriesString(ts, symbols), name)
		}
		if len(value) > l.MaxLabelValueLength {
			return reasonValueTooLong, fmt.Sprintf("series %s has label %q with a value of %d bytes, longer than the limit of %d (-validation.max-length-label-value)", seriesString(ts, symbols), name, len(value), l.MaxLabelValueLength)
		}
		if name == "__name__" {
			if value == "" {
				return reasonMissingName, "series has an empty metric name"
			}
			hasName = true
		}
		if value == "" {
			return reasonBadValue, fmt.Sprintf("series %s has label %q with an empty value (an empty value means no label: leave it out)", seriesString(ts, symbols), name)
		}
	}
	if !hasName {
		return reasonMissingName, fmt.Sprintf("series %s has no metric name (__name__ label)", seriesString(ts, symbols))
	}
	return "", ""
}

// seriesString renders a series for an error message, bounded in length and
// safe for invalid symbol references and invalid UTF-8.
func seriesString(ts *writev2.TimeSeries, symbols []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
		if b.Len() > 200 {
			b.WriteString("…")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		n, v := sym(symbols, ts.LabelsRefs[i]), sym(symbols, ts.LabelsRefs[i+1])
		fmt.Fprintf(&b, "%s=%q", strings.ToValidUTF8(trunc(n), "\uFFFD"), strings.ToValidUTF8(trunc(v), "\uFFFD"))
	}
	b.WriteByte('}')
	return b.String()
}

func sym(symbols []string, r uint32) string {
	if int(r) < len(symbols) {
		return symbols[r]
	}
	return "?"
}

func trunc(s string) string { return strutil.Truncate(s, 64) }

// refsSorted reports whether label pairs are sorted by name, without the
// allocation sort.IsSorted's interface conversion costs on this hot path.
func refsSorted(refs []uint32, symbols []string) bool {
	for i := 2; i < len(refs); i += 2 {
		if symbols[refs[i]] < symbols[refs[i-2]] {
			return false
		}
	}
	return true
}

// labelRefs sorts a series' label reference pairs by label name.
type labelRefs struct {
	refs    []uint32
	symbols []string
}

func (l labelRefs) Len() int { return len(l.refs) / 2 }
func (l labelRefs) Less(i, j int) bool {
	return l.symbols[l.refs[2*i]] < l.symbols[l.refs[2*j]]
}
func (l labelRefs) Swap(i, j int) {
	l.refs[2*i], l.refs[2*j] = l.refs[2*j], l.refs[2*i]
	l.refs[2*i+1], l.refs[2*j+1] = l.refs[2*j+1], l.refs[2*i+1]
}
