package logpush

// OTLP logs (what the OpenTelemetry Collector's otlphttp exporter sends to
// Loki's /otlp/v1/logs) mapped to streams the way Loki documents its native
// OTLP ingestion (https://grafana.com/docs/loki/latest/send-data/otel/):
//
//	OTLP                                    Canopy / Loki
//	resource attribute in the index list    index label, name sanitised (service.name → service_name)
//	other resource attribute                structured metadata, name sanitised
//	scope name / version                    scope_name / scope_version
//	scope dropped_attributes_count (≠ 0)    scope_dropped_attributes_count
//	scope attribute                         structured metadata
//	log record attribute                    structured metadata
//	trace_id / span_id (set)                trace_id / span_id, lower-case hex
//	severity_text (set)                     severity_text
//	severity_number (≠ 0)                   severity_number, decimal
//	flags (≠ 0)                             flags, decimal
//	dropped_attributes_count (≠ 0)          dropped_attributes_count
//	event_name (set)                        event_name
//	observed_time, when time is also set    observed_timestamp, Unix nanoseconds
//	time, else observed_time, else arrival  the entry's timestamp
//	body                                    the line
//
// Values are rendered as the Collector's pcommon.Value.AsString does, which
// is what Loki uses: strings as they are, integers and booleans as Go
// writes them, doubles as JavaScript does (1.5, 3, 1e+21, NaN, Infinity),
// bytes in standard base64, arrays and map bodies as JSON. A map-valued
// attribute is flattened instead: one label per leaf, the names joined with
// '_' (http: {method: GET} → http_method="GET").

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// OTLPConfig chooses which OTLP resource attributes become index labels.
// It is plain data meant for the per-tenant limits; the zero value is
// Loki's default mapping. Attributes are named as the client sends them
// (service.name, not service_name), and only resource attributes can be
// index labels: scope and log record attributes are always structured
// metadata. Whatever is neither an index label nor dropped is structured
// metadata.
type OTLPConfig struct {
	// IndexLabelAttributes are resource attributes that become index labels
	// in addition to the default list (DefaultOTLPIndexAttributes).
	IndexLabelAttributes []string `yaml:"index_label_attributes,omitempty"`
	// DropResourceAttributes are resource attributes dropped altogether:
	// neither index label nor structured metadata. Dropping wins over both
	// index lists (in Loki the default list would win).
	DropResourceAttributes []string `yaml:"drop_resource_attributes,omitempty"`
	// IgnoreDefaultIndexLabels makes IndexLabelAttributes the only index
	// labels: the default list becomes structured metadata.
	IgnoreDefaultIndexLabels bool `yaml:"ignore_default_index_labels"`
}

// Validate checks that every listed attribute has a name that makes a
// label, and that none is both indexed and dropped.
func (c OTLPConfig) Validate() error {
	for _, a := range c.IndexLabelAttributes {
		if _, ok := labelName(a); !ok {
			return fmt.Errorf("index_label_attributes: %q does not make a label name (it needs a letter or digit)", a)
		}
		if slices.Contains(c.DropResourceAttributes, a) {
			return fmt.Errorf("resource attribute %q is in both index_label_attributes and drop_resource_attributes", a)
		}
	}
	if slices.Contains(c.DropResourceAttributes, "") {
		return errors.New("drop_resource_attributes: an attribute name is empty")
	}
	return nil
}

// defaultIndexAttributes is Loki's default
// distributor.otlp.default_resource_attributes_as_index_labels.
var defaultIndexAttributes = [...]string{
	"service.name",
	"service.namespace",
	"service.instance.id",
	"deployment.environment",
	"deployment.environment.name",
	"cloud.region",
	"cloud.availability_zone",
	"k8s.cluster.name",
	"k8s.namespace.name",
	"k8s.pod.name",
	"k8s.container.name",
	"container.name",
	"k8s.replicaset.name",
	"k8s.deployment.name",
	"k8s.statefulset.name",
	"k8s.daemonset.name",
	"k8s.cronjob.name",
	"k8s.job.name",
}

// DefaultOTLPIndexAttributes returns the resource attributes that are
// index labels unless OTLPConfig.IgnoreDefaultIndexLabels is set: Loki's
// default list. The slice is the caller's.
func DefaultOTLPIndexAttributes() []string { return slices.Clone(defaultIndexAttributes[:]) }

// serviceNameSources are the index labels that stand in for a missing
// service.name, first one present in attribute order wins: Loki's default
// discover_service_name list.
var serviceNameSources = [...]string{
	"service", "app", "application", "app_name", "name", "app_kubernetes_io_name",
	"container", "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
}

const (
	attrServiceName  = "service.name"
	labelServiceName = "service_name"
	unknownService   = "unknown_service"
)

type attrAction uint8

const (
	actionMetadata attrAction = iota
	actionIndex
	actionDrop
)

func (c OTLPConfig) resourceAction(name string) attrAction {
	switch {
	case slices.Contains(c.DropResourceAttributes, name):
		return actionDrop
	case slices.Contains(c.IndexLabelAttributes, name),
		!c.IgnoreDefaultIndexLabels && slices.Contains(defaultIndexAttributes[:], name):
		return actionIndex
	}
	return actionMetadata
}

// FromOTLP converts OTLP logs into streams as Loki's OTLP endpoint does
// (the mapping is at the top of this file). Records go to the stream of
// their resource's index labels; resources with the same index labels
// share a stream. Streams come in the order first seen, entries in record
// order. A record with neither time nor observed time gets now, the time
// the request arrived.
//
// Without a non-empty service.name resource attribute a stream is given
// service_name from the first of its index labels in Loki's
// discover_service_name list (k8s_container_name, container_name,
// k8s_job_name … with the default index list), else "unknown_service".
//
// When a name occurs twice in one entry's structured metadata, the more
// specific value is kept: record fields over record attributes over scope
// over resource, and the later attribute over the earlier. Attributes with
// an empty value are left out, as an empty label is no label.
//
// Invalid UTF-8 in an index label or structured metadata value is an error,
// as Loki rejects such index labels (its structured metadata is not
// checked, but what Canopy stores as labels must be UTF-8); the line is
// kept as sent, as with Loki's push API. An attribute whose name has no
// letter or digit is an error, as in Loki. Errors are *Error naming the
// resource, scope and record (counting from 0) and the attribute.
func FromOTLP(ld plog.Logs, cfg OTLPConfig, now time.Time) ([]Stream, error) {
	c := otlpConverter{cfg: cfg, now: now.UnixNano(), names: map[string]string{}}
	var (
		streams []Stream
		byHash  = map[uint64][]int{}
	)
	for i, rl := range ld.ResourceLogs().All() {
		n := 0
		for _, sl := range rl.ScopeLogs().All() {
			n += sl.LogRecords().Len()
		}
		if n == 0 {
			continue // nothing to store, and a stream needs entries
		}
		ls, resMeta, err := c.resource(rl.Resource().Attributes(), i)
		if err != nil {
			return nil, err
		}
		si := -1
		h := ls.Hash()
		for _, j := range byHash[h] {
			if labels.Equal(streams[j].Labels, ls) {
				si = j
				break
			}
		}
		if si < 0 {
			si = len(streams)
			byHash[h] = append(byHash[h], si)
			streams = append(streams, Stream{Labels: ls, Entries: make([]Entry, 0, n)})
		}
		for j, sl := range rl.ScopeLogs().All() {
			if sl.LogRecords().Len() == 0 {
				continue
			}
			base, err := c.scope(sl.Scope(), resMeta, i, j)
			if err != nil {
				return nil, err
			}
			for k, rec := range sl.LogRecords().All() {
				e, err := c.entry(rec, base, i, j, k)
				if err != nil {
					return nil, err
				}
				streams[si].Entries = append(streams[si].Entries, e)
			}
		}
	}
	return streams, nil
}

// otlpConverter holds what one FromOTLP call reuses.
type otlpConverter struct {
	cfg     OTLPConfig
	now     int64
	names   map[string]string // attribute name -> label name
	scratch []labels.Label
	order   []int32
	sb      labels.ScratchBuilder
}

// otlpWhere names a resource, scope or record for an error (j or k < 0 when
// not inside one).
func otlpWhere(i, j, k int) string {
	s := "resource " + strconv.Itoa(i)
	if j >= 0 {
		s += " scope " + strconv.Itoa(j)
	}
	if k >= 0 {
		s += " record " + strconv.Itoa(k)
	}
	return s
}

// resource returns a resource's index labels and the structured metadata
// it gives each of its entries.
func (c *otlpConverter) resource(attrs pcommon.Map, i int) (labels.Labels, []labels.Label, error) {
	hasServiceName := false
	if v, ok := attrs.Get(attrServiceName); ok && v.AsString() != "" {
		hasServiceName = true
	}
	idx := c.scratch[:0]
	var meta []labels.Label
	var err error
	for k, v := range attrs.All() {
		switch c.cfg.resourceAction(k) {
		case actionIndex:
			idx, err = c.appendAttr(idx, k, v, i, -1, -1)
		case actionMetadata:
			meta, err = c.appendAttr(meta, k, v, i, -1, -1)
		}
		if err != nil {
			return labels.EmptyLabels(), nil, err
		}
	}
	if !hasServiceName {
		service := unknownService
		for _, l := range idx {
			if slices.Contains(serviceNameSources[:], l.Name) {
				service = l.Value
				break
			}
		}
		idx = append(idx, labels.Label{Name: labelServiceName, Value: service})
	}
	idx = sortKeepLast(idx)
	c.scratch = idx
	if len(idx) == 0 {
		return labels.EmptyLabels(), nil, errorf("%s has no index labels: index_label_attributes (and the default list, unless ignore_default_index_labels) names none of its attributes", otlpWhere(i, -1, -1))
	}
	return c.labels(idx), meta, nil
}

// scope returns the structured metadata a scope gives each of its entries:
// the resource's, then the scope's, sorted by name and unique.
func (c *otlpConverter) scope(s pcommon.InstrumentationScope, resMeta []labels.Label, i, j int) ([]labels.Label, error) {
	base := make([]labels.Label, 0, len(resMeta)+s.Attributes().Len()+3)
	base = append(base, resMeta...)
	var err error
	for k, v := range s.Attributes().All() {
		if base, err = c.appendAttr(base, k, v, i, j, -1); err != nil {
			return nil, err
		}
	}
	if base, err = appendField(base, "scope_name", s.Name(), i, j, -1); err != nil {
		return nil, err
	}
	if base, err = appendField(base, "scope_version", s.Version(), i, j, -1); err != nil {
		return nil, err
	}
	if n := s.DroppedAttributesCount(); n != 0 {
		base = append(base, labels.Label{Name: "scope_dropped_attributes_count", Value: strconv.FormatUint(uint64(n), 10)})
	}
	return sortKeepLast(base), nil
}

func (c *otlpConverter) entry(rec plog.LogRecord, base []labels.Label, i, j, k int) (Entry, error) {
	var e Entry
	ts := rec.Timestamp()
	if ts == 0 {
		ts = rec.ObservedTimestamp()
	}
	switch {
	case ts > math.MaxInt64:
		return e, errorf("%s: timestamp of %d ns is after 2262 (Unix nanoseconds in 64 bits)", otlpWhere(i, j, k), uint64(ts))
	case ts == 0:
		e.Timestamp = c.now
	default:
		e.Timestamp = int64(ts)
	}
	e.Line = rec.Body().AsString()

	md := c.scratch[:0]
	var err error
	for name, v := range rec.Attributes().All() {
		if md, err = c.appendAttr(md, name, v, i, j, k); err != nil {
			return e, err
		}
	}
	if rec.Timestamp() != 0 && rec.ObservedTimestamp() != 0 {
		md = append(md, labels.Label{Name: "observed_timestamp", Value: strconv.FormatUint(uint64(rec.ObservedTimestamp()), 10)})
	}
	if n := rec.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		md = append(md, labels.Label{Name: "severity_number", Value: strconv.Itoa(int(n))})
	}
	if md, err = appendField(md, "severity_text", rec.SeverityText(), i, j, k); err != nil {
		return e, err
	}
	if n := rec.DroppedAttributesCount(); n != 0 {
		md = append(md, labels.Label{Name: "dropped_attributes_count", Value: strconv.FormatUint(uint64(n), 10)})
	}
	if f := rec.Flags(); f != 0 {
		md = append(md, labels.Label{Name: "flags", Value: strconv.FormatUint(uint64(f), 10)})
	}
	if id := rec.TraceID(); !id.IsEmpty() {
		md = append(md, labels.Label{Name: "trace_id", Value: id.String()})
	}
	if id := rec.SpanID(); !id.IsEmpty() {
		md = append(md, labels.Label{Name: "span_id", Value: id.String()})
	}
	if md, err = appendField(md, "event_name", rec.EventName(), i, j, k); err != nil {
		return e, err
	}
	c.scratch = md
	e.Metadata = c.merge(base, md)
	return e, nil
}

// appendField appends a record or scope field unless it is empty.
func appendField(dst []labels.Label, name, value string, i, j, k int) ([]labels.Label, error) {
	if value == "" {
		return dst, nil
	}
	if !utf8.ValidString(value) {
		return dst, errorf("%s: %s is not valid UTF-8", otlpWhere(i, j, k), name)
	}
	return append(dst, labels.Label{Name: name, Value: value}), nil
}

// appendAttr appends an attribute as labels: one, or one per leaf of a map.
func (c *otlpConverter) appendAttr(dst []labels.Label, key string, v pcommon.Value, i, j, k int) ([]labels.Label, error) {
	name, ok := c.names[key]
	if !ok {
		if name, ok = labelName(key); !ok {
			return dst, errorf("%s: attribute %q: a name needs a letter or digit", otlpWhere(i, j, k), truncate(key))
		}
		c.names[key] = name
	}
	if v.Type() != pcommon.ValueTypeMap {
		return appendValue(dst, name, v, key, i, j, k)
	}
	return appendMap(dst, name, v.Map(), key, i, j, k)
}

// appendMap flattens a map-valued attribute; top is the attribute's name,
// for errors.
func appendMap(dst []labels.Label, prefix string, m pcommon.Map, top string, i, j, k int) ([]labels.Label, error) {
	var err error
	for key, v := range m.All() {
		name, ok := labelName(prefix + "_" + key)
		if !ok { // cannot happen: the prefix has a letter or digit
			return dst, errorf("%s: attribute %q: key %q: a name needs a letter or digit", otlpWhere(i, j, k), truncate(top), truncate(key))
		}
		if v.Type() == pcommon.ValueTypeMap {
			dst, err = appendMap(dst, name, v.Map(), top, i, j, k)
		} else {
			dst, err = appendValue(dst, name, v, top, i, j, k)
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendValue(dst []labels.Label, name string, v pcommon.Value, top string, i, j, k int) ([]labels.Label, error) {
	s := v.AsString()
	if s == "" {
		return dst, nil
	}
	if !utf8.ValidString(s) {
		return dst, errorf("%s: attribute %q: value is not valid UTF-8", otlpWhere(i, j, k), truncate(top))
	}
	return append(dst, labels.Label{Name: name, Value: s}), nil
}

// sortKeepLast sorts by name and keeps, of labels with the same name, the
// one appended last.
func sortKeepLast(ls []labels.Label) []labels.Label {
	slices.SortStableFunc(ls, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	out := ls[:0]
	for i, l := range ls {
		if i+1 < len(ls) && ls[i+1].Name == l.Name {
			continue
		}
		out = append(out, l)
	}
	return out
}

// merge builds an entry's metadata from base (sorted by name and unique)
// and the record's own pairs (in any order; of two with one name the later
// counts), a record's pair winning over base's. The record's pairs are
// sorted through c.order, not moved: moving strings costs write barriers.
func (c *otlpConverter) merge(base, rec []labels.Label) labels.Labels {
	if len(base)+len(rec) == 0 {
		return labels.EmptyLabels()
	}
	c.order = c.order[:0]
	for i := range rec {
		c.order = append(c.order, int32(i))
	}
	slices.SortStableFunc(c.order, func(a, b int32) int { return strings.Compare(rec[a].Name, rec[b].Name) })
	c.sb.Reset()
	order := c.order
	for len(base) > 0 || len(order) > 0 {
		if len(order) == 0 || len(base) > 0 && base[0].Name < rec[order[0]].Name {
			c.sb.Add(base[0].Name, base[0].Value)
			base = base[1:]
			continue
		}
		l := rec[order[0]]
		order = order[1:]
		if len(order) > 0 && rec[order[0]].Name == l.Name {
			continue // a later pair has this name
		}
		if len(base) > 0 && base[0].Name == l.Name {
			base = base[1:]
		}
		c.sb.Add(l.Name, l.Value)
	}
	return c.sb.Labels()
}

// labels builds labels from sorted, unique pairs.
func (c *otlpConverter) labels(ls []labels.Label) labels.Labels {
	if len(ls) == 0 {
		return labels.EmptyLabels()
	}
	c.sb.Reset()
	for _, l := range ls {
		c.sb.Add(l.Name, l.Value)
	}
	return c.sb.Labels()
}

// labelName turns an OTLP attribute name into a Prometheus label name as
// Loki does (the OpenTelemetry-to-Prometheus rule): every run of characters
// other than ASCII letters and digits becomes one '_', a name starting with
// a digit is prefixed with "key_", and a name of the form __x__ keeps its
// double underscores. ok is false when nothing but underscores is left.
func labelName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if isPlainLabelName(s) {
		return s, true
	}
	body, reserved := s, len(s) >= 4 && strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")
	if reserved {
		body = s[2 : len(s)-2]
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	if reserved {
		b.WriteString("__")
	}
	underscore := false
	for _, r := range body {
		if isAlnum(r) {
			b.WriteRune(r)
			underscore = false
		} else if !underscore {
			b.WriteByte('_')
			underscore = true
		}
	}
	if reserved {
		b.WriteString("__")
	}
	out := b.String()
	if strings.Trim(out, "_") == "" {
		return "", false
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "key_" + out
	}
	return out, true
}

// isPlainLabelName reports whether labelName leaves s as it is: letters,
// digits and single underscores, not starting with a digit, not only
// underscores.
func isPlainLabelName(s string) bool {
	if s[0] >= '0' && s[0] <= '9' {
		return false
	}
	alnum := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '_':
			if i > 0 && s[i-1] == '_' {
				return false
			}
		case isAlnum(rune(ch)):
			alnum = true
		default:
			return false
		}
	}
	return alnum
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
