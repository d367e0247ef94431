package traceql

// The syntax tree of a TraceQL query. Trees hold no positions or compiled
// state, so two parses of the same query, or of a query and its String(),
// are reflect.DeepEqual. Parse returns only trees that passed type checks;
// a tree built by hand should go through Parse(tree.String()).

// Query is a parsed TraceQL query: a search (Metrics is nil) or a metrics
// query.
type Query struct {
	// Expr selects spansets from each trace: a spanset expression or a
	// pipeline.
	Expr SpansetExpr
	// Metrics, when set, turns the spans Expr selects into time series.
	Metrics *MetricsAggregate
	// Hints are the query's `with (name=value, …)` hints, in query order.
	Hints []Hint
}

// IsMetrics reports whether q is a metrics query.
func (q *Query) IsMetrics() bool { return q.Metrics != nil }

// Hint returns the value of the named hint; ok is false if q has none.
// When a hint is given twice the last one counts.
func (q *Query) Hint(name string) (v Value, ok bool) {
	for _, h := range q.Hints {
		if h.Name == name {
			v, ok = h.Value, true
		}
	}
	return v, ok
}

// MostRecent reports whether the query asks for the most recent traces
// first (`with (most_recent=true)`).
func (q *Query) MostRecent() bool {
	v, ok := q.Hint("most_recent")
	return ok && v.Bool()
}

// Hint is one `name=value` of a `with (…)` clause.
type Hint struct {
	Name  string
	Value Value
}

// SpansetExpr is an expression that selects spansets from a trace: a
// SpansetFilter, a SpansetOperation or a Pipeline. Every SpansetExpr is
// also a pipeline Stage.
type SpansetExpr interface {
	Stage
	spansetExpr()
}

// Stage is one stage of a Pipeline after its source: a SpansetExpr, a
// ScalarFilter, a GroupBy, a Coalesce or a Select.
type Stage interface {
	String() string
	stage()
}

// SpansetFilter is `{ expr }`: the spans for which Expr is true. A nil
// Expr (`{}`) selects every span.
type SpansetFilter struct {
	Expr FieldExpr
}

// SpansetOperation combines two spanset expressions.
type SpansetOperation struct {
	Op       SpansetOp
	LHS, RHS SpansetExpr
}

// Pipeline runs its stages, in order, over the spansets Source selects.
// A parsed Pipeline has at least one stage and a Source that is not a
// Pipeline (`({…} | a) | b` is the same query as `{…} | a | b`).
type Pipeline struct {
	Source SpansetExpr
	Stages []Stage
}

// ScalarFilter keeps the spansets for which `LHS Op RHS` holds, where the
// sides are aggregates over the spanset, numbers or arithmetic on them.
type ScalarFilter struct {
	Op       Operator
	LHS, RHS ScalarExpr
}

// GroupBy is `by(expr, …)`: it splits each spanset into one spanset per
// distinct value of its expressions.
type GroupBy struct {
	By []FieldExpr
}

// Coalesce is `coalesce()`: it merges all spansets into one.
type Coalesce struct{}

// Select is `select(field, …)`: the fields are returned with the spans.
type Select struct {
	Fields []Field
}

func (*SpansetFilter) spansetExpr()    {}
func (*SpansetOperation) spansetExpr() {}
func (*Pipeline) spansetExpr()         {}
func (*SpansetFilter) stage()          {}
func (*SpansetOperation) stage()       {}
func (*Pipeline) stage()               {}
func (*ScalarFilter) stage()           {}
func (*GroupBy) stage()                {}
func (*Coalesce) stage()               {}
func (*Select) stage()                 {}

// ScalarExpr is a number computed over a spanset: an Aggregate, a Static
// or a ScalarBinary.
type ScalarExpr interface {
	String() string
	scalarExpr()
}

// Aggregate is count(), or avg, min, max or sum of a field expression over
// the spans of a spanset.
type Aggregate struct {
	Op   AggregateOp
	Expr FieldExpr // nil for count()
}

// ScalarBinary is arithmetic on two scalar expressions.
type ScalarBinary struct {
	Op       Operator
	LHS, RHS ScalarExpr
}

func (*Aggregate) scalarExpr()    {}
func (*ScalarBinary) scalarExpr() {}
func (*Static) scalarExpr()       {}

// AggregateOp is the function of an Aggregate.
type AggregateOp uint8

// Aggregate functions.
const (
	AggregateCount AggregateOp = iota + 1
	AggregateAvg
	AggregateMin
	AggregateMax
	AggregateSum
)

var aggregateNames = map[AggregateOp]string{
	AggregateCount: "count", AggregateAvg: "avg", AggregateMin: "min", AggregateMax: "max", AggregateSum: "sum",
}

func (o AggregateOp) String() string { return aggregateNames[o] }

// FieldExpr is an expression evaluated on one span: a BinaryExpr, a
// UnaryExpr, a Static or a Field.
type FieldExpr interface {
	String() string
	fieldExpr()
}

// BinaryExpr is a comparison, a logical operator or arithmetic.
type BinaryExpr struct {
	Op       Operator
	LHS, RHS FieldExpr
}

// UnaryExpr is `!expr` (OpNot) or `-expr` (OpSub). A minus before a
// number or duration is folded into the Static.
type UnaryExpr struct {
	Op   Operator
	Expr FieldExpr
}

// Static is a literal value.
type Static struct {
	Value Value
}

// Field is an attribute (Intrinsic is IntrinsicNone; Scope and Name name
// it) or an intrinsic (Scope is ScopeNone and Name empty).
type Field struct {
	Scope     Scope
	Name      string
	Intrinsic Intrinsic
}

func (*BinaryExpr) fieldExpr() {}
func (*UnaryExpr) fieldExpr()  {}
func (*Static) fieldExpr()     {}
func (*Field) fieldExpr()      {}

// IsIntrinsic reports whether f is an intrinsic.
func (f Field) IsIntrinsic() bool { return f.Intrinsic != IntrinsicNone }

// Scope is where an attribute lives.
type Scope uint8

// Attribute scopes. ScopeNone is the unscoped `.name`: the span's
// attribute, or the resource's when the span has none of that name.
const (
	ScopeNone Scope = iota
	ScopeSpan
	ScopeResource
	ScopeEvent
	ScopeLink
	ScopeInstrumentation
)

var scopeNames = map[Scope]string{
	ScopeNone: "", ScopeSpan: "span", ScopeResource: "resource", ScopeEvent: "event",
	ScopeLink: "link", ScopeInstrumentation: "instrumentation",
}

func (s Scope) String() string { return scopeNames[s] }

// Operator is an operator of field and scalar expressions.
type Operator uint8

// Operators. OpNone marks a Condition that only reads its field.
const (
	OpNone Operator = iota
	OpEqual
	OpNotEqual
	OpGreater
	OpGreaterEqual
	OpLess
	OpLessEqual
	OpRegex
	OpNotRegex
	OpAnd
	OpOr
	OpNot
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
	OpPow
)

var operatorText = map[Operator]string{
	OpEqual: "=", OpNotEqual: "!=", OpGreater: ">", OpGreaterEqual: ">=", OpLess: "<", OpLessEqual: "<=",
	OpRegex: "=~", OpNotRegex: "!~", OpAnd: "&&", OpOr: "||", OpNot: "!",
	OpAdd: "+", OpSub: "-", OpMul: "*", OpDiv: "/", OpMod: "%", OpPow: "^",
}

func (o Operator) String() string { return operatorText[o] }

func (o Operator) isComparison() bool { return o >= OpEqual && o <= OpNotRegex }

func (o Operator) isArithmetic() bool { return o >= OpAdd && o <= OpPow }

// SpansetOp is an operator between two spanset expressions.
type SpansetOp uint8

// Spanset operators. The structural ones return the right-hand spans that
// stand in the relation to some left-hand span; the Union forms return the
// spans of both sides that take part in it; the Not forms return the
// right-hand spans that do not.
const (
	SpansetAnd SpansetOp = iota + 1
	SpansetOr
	SpansetChild           // >
	SpansetParent          // <
	SpansetDescendant      // >>
	SpansetAncestor        // <<
	SpansetSibling         // ~
	SpansetUnionChild      // &>
	SpansetUnionParent     // &<
	SpansetUnionDescendant // &>>
	SpansetUnionAncestor   // &<<
	SpansetUnionSibling    // &~
	SpansetNotChild        // !>
	SpansetNotParent       // !<
	SpansetNotDescendant   // !>>
	SpansetNotAncestor     // !<<
	SpansetNotSibling      // !~
)

var spansetOpText = map[SpansetOp]string{
	SpansetAnd: "&&", SpansetOr: "||",
	SpansetChild: ">", SpansetParent: "<", SpansetDescendant: ">>", SpansetAncestor: "<<", SpansetSibling: "~",
	SpansetUnionChild: "&>", SpansetUnionParent: "&<", SpansetUnionDescendant: "&>>", SpansetUnionAncestor: "&<<", SpansetUnionSibling: "&~",
	SpansetNotChild: "!>", SpansetNotParent: "!<", SpansetNotDescendant: "!>>", SpansetNotAncestor: "!<<", SpansetNotSibling: "!~",
}

func (o SpansetOp) String() string { return spansetOpText[o] }

// MetricsAggregate is the metrics function that ends a metrics query.
type MetricsAggregate struct {
	Op MetricsOp
	// Expr is the measured field expression; nil for rate() and
	// count_over_time().
	Expr FieldExpr
	// Quantiles of quantile_over_time, each in [0, 1].
	Quantiles []float64
	// By groups the series: one series per distinct value.
	By []FieldExpr
	// Filter, when set, keeps the points that compare to a number
	// (`rate() > 10`).
	Filter *MetricsFilter
	// Limit, when set, keeps at each step only the k highest or lowest
	// series (`| topk(10)`, `| bottomk(10)`).
	Limit *MetricsLimit
}

// MetricsFilter is a comparison of a metrics query's points with a number.
type MetricsFilter struct {
	Op    Operator // = != < <= > >=
	Value float64
}

// MetricsLimit is topk (Bottom false) or bottomk (Bottom true).
type MetricsLimit struct {
	Bottom bool
	K      int
}

// MetricsOp is a metrics function.
type MetricsOp uint8

// Metrics functions.
const (
	MetricsRate MetricsOp = iota + 1
	MetricsCountOverTime
	MetricsMinOverTime
	MetricsMaxOverTime
	MetricsAvgOverTime
	MetricsSumOverTime
	MetricsQuantileOverTime
	MetricsHistogramOverTime
)

var metricsNames = map[MetricsOp]string{
	MetricsRate: "rate", MetricsCountOverTime: "count_over_time", MetricsMinOverTime: "min_over_time",
	MetricsMaxOverTime: "max_over_time", MetricsAvgOverTime: "avg_over_time", MetricsSumOverTime: "sum_over_time",
	MetricsQuantileOverTime: "quantile_over_time", MetricsHistogramOverTime: "histogram_over_time",
}

func (o MetricsOp) String() string { return metricsNames[o] }

// hasField reports whether the function takes a field expression.
func (o MetricsOp) hasField() bool { return o != MetricsRate && o != MetricsCountOverTime }
