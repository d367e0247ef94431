package traceblock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/canopy-observability/canopy/pkg/traceql"
)

// Filter is the part of a TraceQL query that a scan tests on a few
// columns of data.parquet before it reads any trace whole: the tests
// traceql.ConditionsOf pushes down, on the intrinsics and attributes that
// have columns of their own. A trace in which no span passes them is
// skipped without reading its other columns; the traces left are read
// whole and evaluated by the caller. Every test here holds on a superset
// of the spans the query's own test holds on (a test this layer cannot
// evaluate exactly passes), so a Filter never drops a trace the query
// matches.
type Filter struct {
	all   bool // a span must pass every test; else at least one
	tests []columnTest
}

// columnTest is one pushed-down test and where its values are.
type columnTest struct {
	test func(traceql.Value) bool

	// A span or trace column: its path and how to read a value.
	column string
	value  func(parquet.Value) traceql.Value
	// trace:duration, computed from trace_start and trace_end.
	traceDuration bool

	// An attribute: key in the attribute groups named (span before
	// resource); the resource's service.name is in service_name too.
	key     string
	groups  []string
	service bool
	typed   []string // the typed columns an operand of its kind can match
}

// NewFilter returns the Filter of q, or nil when q has no test a block
// can evaluate on its columns (every trace must then be read).
func NewFilter(q *traceql.Query) (*Filter, error) {
	conds, all := traceql.ConditionsOf(q)
	f := &Filter{all: all}
	for _, c := range conds {
		test, err := c.Test()
		if err != nil {
			return nil, err
		}
		if test == nil {
			if c.Op == traceql.OpNone {
				continue // a field read, not tested
			}
			if !all {
				return nil, nil // an alternative the columns cannot rule out
			}
			continue
		}
		ct, ok := columnTestOf(c)
		if !ok {
			if !all {
				return nil, nil
			}
			continue // a conjunct left to the evaluator
		}
		ct.test = test
		f.tests = append(f.tests, ct)
	}
	if len(f.tests) == 0 {
		return nil, nil
	}
	return f, nil
}

func columnTestOf(c traceql.Condition) (columnTest, bool) {
	str := func(v parquet.Value) traceql.Value { return traceql.StringValue(string(v.ByteArray())) }
	f := c.Field
	switch f.Intrinsic {
	case traceql.IntrinsicNone:
	case traceql.IntrinsicName:
		return columnTest{column: "name", value: str}, true
	case traceql.IntrinsicStatusMessage:
		return columnTest{column: "status_message", value: str}, true
	case traceql.IntrinsicStatus:
		return columnTest{column: "status_code", value: func(v parquet.Value) traceql.Value {
			return traceql.StatusValue(traceql.Status(v.Int32()))
		}}, true
	case traceql.IntrinsicKind:
		return columnTest{column: "kind", value: func(v parquet.Value) traceql.Value {
			return traceql.KindValue(traceql.Kind(v.Int32()))
		}}, true
	case traceql.IntrinsicDuration:
		return columnTest{column: "duration", value: func(v parquet.Value) traceql.Value {
			return traceql.Value{Type: traceql.TypeDuration, Num: v.Int64()}
		}}, true
	case traceql.IntrinsicTraceRootName:
		return columnTest{column: "root_name", value: str}, true
	case traceql.IntrinsicTraceRootService:
		return columnTest{column: "root_service", value: str}, true
	case traceql.IntrinsicTraceDuration:
		return columnTest{traceDuration: true}, true
	default:
		return columnTest{}, false
	}
	var typed []string
	switch {
	case c.Op == traceql.OpRegex || c.Op == traceql.OpNotRegex || c.Operand.Type == traceql.TypeString:
		typed = []string{"str"}
	case c.Operand.Type == traceql.TypeInt || c.Operand.Type == traceql.TypeFloat || c.Operand.Type == traceql.TypeDuration:
		typed = []string{"int", "double"}
	case c.Operand.Type == traceql.TypeBool:
		typed = []string{"bool"}
	default:
		return columnTest{}, false
	}
	ct := columnTest{key: f.Name, typed: typed}
	switch f.Scope {
	case traceql.ScopeSpan:
		ct.groups = []string{"attrs"}
	case traceql.ScopeResource:
		ct.groups = []string{"resource_attrs"}
	case traceql.ScopeNone:
		// The span's attribute, else the resource's: passing on either is
		// a superset.
		ct.groups = []string{"attrs", "resource_attrs"}
	default:
		return columnTest{}, false
	}
	ct.service = f.Name == "service.name" && f.Scope != traceql.ScopeSpan
	return ct, true
}

// rowRange is rows [first, first+n) of a file: a trace, whose earliest
// span starts at start (Unix ns).
type rowRange struct{ first, n, start int64 }

// candidates returns the row ranges of the traces of f that start in row
// groups [g0, g1) and have a span in [start, end] (both 0: any) and, when
// flt is not nil, a span that passes its tests, in row order. A trace
// that goes on past g1-1 is read to its end; one that started before g0
// is left to the part before. It reads trace_id,
// trace_start, trace_end and the tests' columns.
func candidates(ctx context.Context, f *parquet.File, g0, g1 int, start, end int64, flt *Filter) ([]rowRange, error) {
	groups := f.RowGroups()
	var (
		out     []rowRange
		cur     rowRange
		curID   [16]byte
		curPass bool
		curIn   bool
		base    int64
		skip    *[16]byte // the trace that started before g0
	)
	for _, rg := range groups[:g0] {
		base += rg.NumRows()
	}
	if g0 > 0 {
		ids, err := traceIDs(f, groups[g0-1])
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			skip = &ids[len(ids)-1]
		}
	}
	emit := func() {
		if cur.n > 0 && curPass && curIn {
			out = append(out, cur)
		}
	}
	timed := start != 0 || end != 0
	for g := g0; g < len(groups); g++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rg := groups[g]
		n := int(rg.NumRows())
		ids, err := traceIDs(f, rg)
		if err != nil {
			return nil, err
		}
		if g >= g1 && (cur.n == 0 || len(ids) == 0 || ids[0] != curID) {
			break // nothing of the last trace here
		}
		starts, err := readInt64s(f, rg, "trace_start", n)
		if err != nil {
			return nil, err
		}
		ends, err := readInt64s(f, rg, "trace_end", n)
		if err != nil {
			return nil, err
		}
		if len(ids) != n || len(starts) != n || len(ends) != n {
			return nil, fmt.Errorf("row group of %d rows has %d trace IDs, %d starts and %d ends", n, len(ids), len(starts), len(ends))
		}
		var pass []bool
		if flt != nil {
			if pass, err = flt.rowsPassing(f, rg, n, starts, ends); err != nil {
				return nil, err
			}
		}
		r := 0
		for skip != nil && r < n && ids[r] == *skip {
			r++
		}
		if r < n {
			skip = nil
		}
		ended := false
		for ; r < n; r++ {
			if cur.n == 0 || ids[r] != curID {
				if g >= g1 {
					ended = true // the next part's
					break
				}
				emit()
				cur, curID, curPass = rowRange{first: base + int64(r), start: starts[r]}, ids[r], false
				curIn = !timed || (ends[r] >= start && starts[r] <= end)
			}
			cur.n++
			if pass == nil || pass[r] {
				curPass = true
			}
		}
		if ended {
			break
		}
		base += int64(n)
	}
	emit()
	return out, nil
}

func traceIDs(f *parquet.File, rg parquet.RowGroup) ([][16]byte, error) {
	ids := make([][16]byte, 0, rg.NumRows())
	err := readLeaf(f, rg, "trace_id", func(_ int, v parquet.Value) {
		ids = append(ids, [16]byte(v.ByteArray()))
	})
	return ids, err
}

// rowsPassing returns, for each of rg's n rows, whether its span passes
// the filter.
func (flt *Filter) rowsPassing(f *parquet.File, rg parquet.RowGroup, n int, starts, ends []int64) ([]bool, error) {
	var acc []bool
	for i := range flt.tests {
		pass, err := flt.tests[i].rows(f, rg, n, starts, ends)
		if err != nil {
			return nil, err
		}
		switch {
		case acc == nil:
			acc = pass
		case flt.all:
			for r := range acc {
				acc[r] = acc[r] && pass[r]
			}
		default:
			for r := range acc {
				acc[r] = acc[r] || pass[r]
			}
		}
	}
	return acc, nil
}

// rows returns, for each of rg's n rows, whether its span may pass t.
func (t *columnTest) rows(f *parquet.File, rg parquet.RowGroup, n int, starts, ends []int64) ([]bool, error) {
	pass := make([]bool, n)
	switch {
	case t.traceDuration:
		for r := range n {
			pass[r] = t.test(traceql.Value{Type: traceql.TypeDuration, Num: ends[r] - starts[r]})
		}
		return pass, nil
	case t.column != "":
		err := readLeaf(f, rg, t.column, func(r int, v parquet.Value) {
			if r < n {
				pass[r] = t.test(t.value(v))
			}
		})
		return pass, err
	}
	if t.service {
		if err := readLeaf(f, rg, "service_name", func(r int, v parquet.Value) {
			if r < n && len(v.ByteArray()) > 0 && t.test(traceql.StringValue(string(v.ByteArray()))) {
				pass[r] = true
			}
		}); err != nil {
			return nil, err
		}
	}
	for _, g := range t.groups {
		if err := t.attrRows(f, rg, g, pass); err != nil {
			return nil, err
		}
	}
	return pass, nil
}

// attrRows sets pass[r] for the rows whose attribute group g holds t.key
// with a value that may pass t.
func (t *columnTest) attrRows(f *parquet.File, rg parquet.RowGroup, g string, pass []bool) error {
	// The leaf columns of a group are aligned: value i of the key column
	// and value i of each typed column belong to the same attribute.
	type hit struct {
		value int
		row   int
		typ   int32
	}
	var hits []hit
	key := []byte(t.key)
	i := 0
	if err := readLeaf(f, rg, g+".key", func(r int, v parquet.Value) {
		if !v.IsNull() && bytes.Equal(v.ByteArray(), key) {
			hits = append(hits, hit{value: i, row: r})
		}
		i++
	}); err != nil || len(hits) == 0 {
		return err
	}
	at := hitIndex(hits, func(h hit) int { return h.value })
	if err := readHits(f, rg, g+".type", at, func(k int, v parquet.Value) {
		hits[k].typ = v.Int32()
	}); err != nil {
		return err
	}
	for k := range hits {
		switch hits[k].typ {
		case typeStr, typeInt, typeDouble, typeBool:
		default:
			// A map, array or bytes value: the evaluator decides.
			if hits[k].row < len(pass) {
				pass[hits[k].row] = true
			}
		}
	}
	for _, col := range t.typed {
		want, conv := typedColumn(col)
		if !slices.ContainsFunc(hits, func(h hit) bool { return h.typ == want }) {
			continue
		}
		if err := readHits(f, rg, g+"."+col, at, func(k int, v parquet.Value) {
			h := hits[k]
			if h.typ == want && h.row < len(pass) && t.test(conv(v)) {
				pass[h.row] = true
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

func typedColumn(col string) (int32, func(parquet.Value) traceql.Value) {
	switch col {
	case "str":
		return typeStr, func(v parquet.Value) traceql.Value { return traceql.StringValue(string(v.ByteArray())) }
	case "int":
		return typeInt, func(v parquet.Value) traceql.Value { return traceql.IntValue(v.Int64()) }
	case "double":
		return typeDouble, func(v parquet.Value) traceql.Value { return traceql.FloatValue(v.Double()) }
	default:
		return typeBool, func(v parquet.Value) traceql.Value { return traceql.BoolValue(v.Boolean()) }
	}
}

func hitIndex[H any](hits []H, at func(H) int) []int {
	idx := make([]int, len(hits))
	for k, h := range hits {
		idx[k] = at(h)
	}
	return idx
}

// readHits calls fn(k, v) with value at[k] of a leaf column, for at in
// increasing order.
func readHits(f *parquet.File, rg parquet.RowGroup, path string, at []int, fn func(k int, v parquet.Value)) error {
	i, k := 0, 0
	return readLeaf(f, rg, path, func(_ int, v parquet.Value) {
		for k < len(at) && at[k] == i {
			fn(k, v)
			k++
		}
		i++
	})
}

func readInt64s(f *parquet.File, rg parquet.RowGroup, path string, n int) ([]int64, error) {
	out := make([]int64, 0, n)
	err := readLeaf(f, rg, path, func(_ int, v parquet.Value) { out = append(out, v.Int64()) })
	return out, err
}

// readLeaf calls fn with every value of the leaf column at path (dotted)
// in rg, with the row it belongs to.
func readLeaf(f *parquet.File, rg parquet.RowGroup, path string, fn func(row int, v parquet.Value)) error {
	leaf, ok := f.Schema().Lookup(strings.Split(path, ".")...)
	if !ok {
		return fmt.Errorf("no column %s", path)
	}
	pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 512)
	row := -1
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", path, err)
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				if v.RepetitionLevel() == 0 {
					row++
				}
				fn(row, v)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("column %s: %w", path, err)
			}
			if n == 0 {
				return fmt.Errorf("column %s: page yields no values", path)
			}
		}
	}
}
