package distributor

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logpush"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/util/strutil"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Reasons a log entry is dropped by the distributor.
const (
	reasonLineTooLong     = "line_too_long"
	reasonLogTooOld       = "too_old"
	reasonTooNew          = "too_far_in_future"
	reasonBadLabels       = "invalid_labels"
	reasonMetadataTooBig  = "structured_metadata_too_large"
	reasonInvalidUTF8Line = "invalid_utf8"
)

// logsValidation is what validateLogs found.
type logsValidation struct {
	entries, bytes int // accepted
	rejected       int
	reasons        map[string]int
	firstError     string
}

func (v *logsValidation) reject(reason string, n int, msg string) {
	if n == 0 {
		return
	}
	if v.reasons == nil {
		v.reasons = map[string]int{}
	}
	v.reasons[reason] += n
	v.rejected += n
	if v.firstError == "" {
		v.firstError = msg
	}
}

// validateLogs checks streams against the tenant's logs limits and returns
// the request of what passes. A stream whose labels break a limit loses
// all its entries; an entry breaking a limit is dropped alone.
func validateLogs(streams []logpush.Stream, l *validation.Limits, nowNs int64) (*logspb.PushRequest, logsValidation) {
	var v logsValidation
	req := &logspb.PushRequest{Streams: make([]*logspb.Stream, 0, len(streams))}
	oldest := int64(-1 << 63)
	if age := time.Duration(l.LogsRejectOldSamplesMaxAge); age > 0 {
		oldest = nowNs - age.Nanoseconds()
	}
	newest := nowNs + time.Duration(l.LogsCreationGracePeriod).Nanoseconds()
	for _, s := range streams {
		if msg := checkStreamLabels(s.Labels, l); msg != "" {
			v.reject(reasonBadLabels, len(s.Entries), msg)
			continue
		}
		ws := &logspb.Stream{Labels: logsclient.FromLabels(s.Labels)}
		for _, e := range s.Entries {
			switch {
			case l.LogsMaxLineSize > 0 && len(e.Line) > l.LogsMaxLineSize:
				v.reject(reasonLineTooLong, 1, fmt.Sprintf("stream %s: a line of %d bytes is longer than the limit of %d bytes (-validation.logs.max-line-size, logs_max_line_size)", truncateLabels(s.Labels), len(e.Line), l.LogsMaxLineSize))
				continue
			case e.Timestamp < oldest:
				v.reject(reasonLogTooOld, 1, fmt.Sprintf("stream %s: entry at %s is older than the limit of %s (-validation.logs.reject-old-samples-max-age, logs_reject_old_samples_max_age)", truncateLabels(s.Labels), formatNs(e.Timestamp), time.Duration(l.LogsRejectOldSamplesMaxAge)))
				continue
			case e.Timestamp > newest:
				v.reject(reasonTooNew, 1, fmt.Sprintf("stream %s: entry at %s is more than %s in the future (-validation.logs.create-grace-period, logs_creation_grace_period)", truncateLabels(s.Labels), formatNs(e.Timestamp), time.Duration(l.LogsCreationGracePeriod)))
				continue
			case !utf8.ValidString(e.Line):
				v.reject(reasonInvalidUTF8Line, 1, fmt.Sprintf("stream %s: entry at %s has a line that is not valid UTF-8", truncateLabels(s.Labels), formatNs(e.Timestamp)))
				continue
			}
			if size := metadataSize(e.Metadata); l.LogsMaxMetadataSize > 0 && size > l.LogsMaxMetadataSize {
				v.reject(reasonMetadataTooBig, 1, fmt.Sprintf("stream %s: entry at %s carries %d bytes of structured metadata, more than the limit of %d bytes (-validation.logs.max-structured-metadata-size, logs_max_structured_metadata_size)", truncateLabels(s.Labels), formatNs(e.Timestamp), size, l.LogsMaxMetadataSize))
				continue
			}
			ws.Entries = append(ws.Entries, &logspb.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: logsclient.FromLabels(e.Metadata)})
			v.entries++
			v.bytes += len(e.Line) + metadataSize(e.Metadata)
		}
		if len(ws.Entries) > 0 {
			req.Streams = append(req.Streams, ws)
		}
	}
	return req, v
}

// checkStreamLabels returns what is wrong with a stream's labels, or "".
func checkStreamLabels(ls labels.Labels, l *validation.Limits) string {
	if ls.IsEmpty() {
		return "a stream has no labels: every stream needs at least one, e.g. {job=\"app\"}"
	}
	if n := ls.Len(); n > l.LogsMaxLabelNamesPerStream {
		return fmt.Sprintf("stream %s has %d labels, more than the limit of %d (-validation.logs.max-label-names-per-stream, logs_max_label_names_per_stream)", truncateLabels(ls), n, l.LogsMaxLabelNamesPerStream)
	}
	msg := ""
	ls.Range(func(lb labels.Label) {
		switch {
		case msg != "":
		case len(lb.Name) > l.LogsMaxLabelNameLength:
			msg = fmt.Sprintf("stream %s: label name %q is longer than the limit of %d bytes (-validation.logs.max-length-label-name, logs_max_label_name_length)", truncateLabels(ls), strutil.Truncate(lb.Name, 60), l.LogsMaxLabelNameLength)
		case len(lb.Value) > l.LogsMaxLabelValueLength:
			msg = fmt.Sprintf("stream %s: the value of label %s is longer than the limit of %d bytes (-validation.logs.max-length-label-value, logs_max_label_value_length)", truncateLabels(ls), lb.Name, l.LogsMaxLabelValueLength)
		case !logpush.IsLabelName(lb.Name):
			msg = fmt.Sprintf("stream %s: invalid label name %q: a label name is letters, digits and _, not starting with a digit", truncateLabels(ls), strutil.Truncate(lb.Name, 60))
		case lb.Value == "":
			msg = fmt.Sprintf("stream %s: label %s has an empty value", truncateLabels(ls), lb.Name)
		}
	})
	return msg
}

func metadataSize(md labels.Labels) int {
	n := 0
	md.Range(func(l labels.Label) { n += len(l.Name) + len(l.Value) })
	return n
}

func truncateLabels(ls labels.Labels) string { return strutil.Truncate(ls.String(), 200) }

func formatNs(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
