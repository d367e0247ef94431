package ruler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/parser/posrange"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/template"
	"go.yaml.in/yaml/v3"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// LogQL rules. Prometheus's rules manager evaluates them as it evaluates
// PromQL rules: the expression it holds is the LogQL text (logqlExpr),
// which its query function sends to the Loki query API.

// logqlExpr is a LogQL metric query where the rules manager expects a
// PromQL expression: it only prints it, to query it and to show it.
type logqlExpr struct{ text string }

func (e logqlExpr) String() string                        { return e.text }
func (e logqlExpr) Pretty(int) string                     { return e.text }
func (e logqlExpr) PositionRange() posrange.PositionRange { return posrange.PositionRange{} }
func (e logqlExpr) Type() parser.ValueType                { return parser.ValueTypeVector }
func (e logqlExpr) PromQLExpr()                           {}

// parseLogQLRule parses a LogQL rule's expression: a metric query.
func parseLogQLRule(s string) (parser.Expr, error) {
	e, err := logql.Parse(s)
	if err != nil {
		return nil, err
	}
	if _, ok := e.(*logql.LogExpr); ok {
		return nil, errors.New("a log query cannot be a rule: use a metric query such as sum(rate({app=\"x\"} |= \"error\" [5m])) > 1")
	}
	return logqlExpr{text: s}, nil
}

// ParseLogQLGroup reads one LogQL rule group (the body of a Loki rules API
// upload) and checks it as Loki's ruler does: unknown fields, an empty
// name, one of record and alert per rule, a valid record name, a LogQL
// metric query, labels and annotation templates; the errors name line and
// column of body, the group and the rule, in promtool's form.
func ParseLogQLGroup(body []byte) (rulefmt.RuleGroup, []error) {
	g, node, errs := decodeGroup(body)
	if node == nil {
		return g, errs
	}
	for i, r := range g.Rules {
		name := r.Alert + r.Record
		fail := func(n yaml.Node, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%d:%d: group %q, rule %d, %q: %s", n.Line, n.Column, g.Name, i+1, name, fmt.Sprintf(format, args...)))
		}
		rn := node.Rules[i]
		at := rn.Alert // labels and annotations have no node of their own
		if r.Record != "" {
			at = rn.Record
		}
		switch {
		case r.Record != "" && r.Alert != "":
			fail(rn.Record, "only one of 'record' and 'alert' must be set")
		case r.Record == "" && r.Alert == "":
			fail(rn.Expr, "one of 'record' or 'alert' must be set")
		case r.Record != "" && !model.UTF8Validation.IsValidMetricName(r.Record):
			fail(rn.Record, "invalid recording rule name: %s", r.Record)
		}
		if r.Expr == "" {
			fail(rn.Expr, "field 'expr' must be set in rule")
		} else if _, err := parseLogQLRule(r.Expr); err != nil {
			fail(rn.Expr, "could not parse expression: %v", err)
		}
		if r.Record != "" && (len(r.Annotations) > 0 || r.For != 0 || r.KeepFiringFor != 0) {
			fail(rn.Record, "invalid field 'annotations', 'for' or 'keep_firing_for' in recording rule")
		}
		for k, v := range r.Labels {
			if !model.UTF8Validation.IsValidLabelName(k) || k == model.MetricNameLabel {
				fail(at, "invalid label name: %s", k)
			}
			if r.Alert == "" {
				continue
			}
			if err := checkTemplate(name, k, v); err != nil {
				fail(at, "label %q: %v", k, err)
			}
		}
		for k, v := range r.Annotations {
			if err := checkTemplate(name, k, v); err != nil {
				fail(at, "annotation %q: %v", k, err)
			}
		}
	}
	return g, errs
}

// checkTemplate parses a label or annotation template as the rules
// manager will expand it.
func checkTemplate(rule, key, text string) error {
	tmpl := newTemplate(rule, key, text)
	return tmpl.ParseTest()
}

// LokiQuery returns the LogQL rule query function of a tenant: an instant
// query of the Loki API at base (over HTTP), or of handler() in this
// process when base is empty.
func LokiQuery(base string, client *http.Client, handler func() http.Handler) func(tenant string) rules.QueryFunc {
	return func(tenant string) rules.QueryFunc {
		return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
			form := url.Values{"query": {q}, "time": {strconv.FormatInt(t.UnixNano(), 10)}}
			code, body, err := ask(ctx, base, lokiapi.PathPrefix+"query", tenant, form, client, handler)
			if err != nil {
				return nil, err
			}
			if code != http.StatusOK {
				return nil, fmt.Errorf("HTTP %d from the Loki query API: %.300s", code, body)
			}
			res, err := lokiapi.DecodeQueryResult(body)
			if err != nil {
				return nil, err
			}
			switch res.Type {
			case parser.ValueTypeVector:
				return res.Vector, nil
			case parser.ValueTypeScalar:
				return promql.Vector{{T: res.Scalar.T, F: res.Scalar.V, Metric: labels.EmptyLabels()}}, nil
			}
			return nil, fmt.Errorf("the LogQL rule answered a %s, not a vector", res.Type)
		}
	}
}

// newTemplate is the expander the rules manager makes of an alert's label
// or annotation template.
func newTemplate(rule, _, text string) *template.Expander {
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	return template.NewTemplateExpander(context.TODO(), defs+text, "__alert_"+rule,
		template.AlertTemplateData(map[string]string{}, map[string]string{}, "", promql.Sample{}), model.Now(), nil, nil, nil)
}
