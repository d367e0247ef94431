package traceblock

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/parquet-go/parquet-go"
)

// picker reads chosen rows of data.parquet column by column: each
// column's pages are read once, in order, and a page holding none of the
// rows asked for is not read at all (the offset index says which rows a
// page holds). Reading a few rows of many this way costs the decoding of
// their pages, not the assembly of every row in between.
type picker struct {
	groups  []parquet.RowGroup
	cursors []columnCursor
	rows    []parquet.Row
}

func newPicker(f *parquet.File) (*picker, error) {
	if !parquet.EqualNodes(f.Schema(), rowSchema) {
		return nil, fmt.Errorf("the schema is not format %d's", Version)
	}
	p := &picker{groups: f.RowGroups(), cursors: make([]columnCursor, len(f.Schema().Columns()))}
	for c := range p.cursors {
		p.cursors[c] = columnCursor{col: c, groups: p.groups, pageIdx: -1}
	}
	return p, nil
}

// pick returns the rows of want (ranges in increasing row order, after
// those asked for before), one parquet.Row each. The rows are valid until
// the next call.
func (p *picker) pick(want []rowRange) ([]parquet.Row, error) {
	n := 0
	for _, r := range want {
		n += int(r.n)
	}
	for len(p.rows) < n {
		p.rows = append(p.rows, nil)
	}
	rows := p.rows[:n]
	for i := range rows {
		rows[i] = rows[i][:0]
	}
	for c := range p.cursors {
		cur := &p.cursors[c]
		i := 0
		for _, r := range want {
			for row := r.first; row < r.first+r.n; row++ {
				var err error
				if rows[i], err = cur.take(rows[i], row); err != nil {
					return nil, fmt.Errorf("column %d, row %d: %w", c, row, err)
				}
				i++
			}
		}
	}
	return rows, nil
}

func (p *picker) close() {
	for c := range p.cursors {
		p.cursors[c].closePages()
	}
}

// columnCursor reads one column's values row by row, forward.
type columnCursor struct {
	col    int
	groups []parquet.RowGroup
	g      int   // the row group pages reads
	base   int64 // its first row in the file
	pages  parquet.Pages
	index  parquet.OffsetIndex // nil when the file has none

	pageIdx int             // the page vals holds, -1 before the first
	pageEnd int64           // the file row after its last
	vals    []parquet.Value // its values, from the row at i on
	i       int
	row     int64 // the file row vals[i] begins
}

// take appends the values of file row row (after any taken before) to
// dst.
func (c *columnCursor) take(dst parquet.Row, row int64) (parquet.Row, error) {
	if err := c.seek(row); err != nil {
		return dst, err
	}
	for {
		dst = append(dst, c.vals[c.i].Clone())
		c.i++
		if c.i == len(c.vals) || c.vals[c.i].RepetitionLevel() == 0 {
			c.row++
			return dst, nil
		}
	}
}

// seek positions the cursor on the first value of row.
func (c *columnCursor) seek(row int64) error {
	if c.i < len(c.vals) && row < c.pageEnd {
		if row < c.row {
			return fmt.Errorf("rows asked for out of order")
		}
		for c.row < row {
			c.i++
			if c.i == len(c.vals) {
				return io.ErrUnexpectedEOF
			}
			if c.vals[c.i].RepetitionLevel() == 0 {
				c.row++
			}
		}
		return nil
	}
	for c.g < len(c.groups) && row >= c.base+c.groups[c.g].NumRows() {
		c.base += c.groups[c.g].NumRows()
		c.g++
		c.closePages()
	}
	if c.g == len(c.groups) {
		return fmt.Errorf("row %d is past the file's end", row)
	}
	if c.pages == nil {
		cc := c.groups[c.g].ColumnChunks()[c.col]
		c.pages = cc.Pages()
		c.index, _ = cc.OffsetIndex()
		if c.index != nil && c.index.NumPages() == 0 {
			c.index = nil
		}
		c.pageIdx = -1
		c.vals, c.i = c.vals[:0], 0
	}
	local := row - c.base
	first := local // the page's first row as read
	next := c.pageIdx + 1
	if c.index != nil {
		p := sort.Search(c.index.NumPages(), func(i int) bool { return c.index.FirstRowIndex(i) > local }) - 1
		if p < 0 {
			return fmt.Errorf("row %d is before the row group's first page", row)
		}
		if p != next {
			// Jump to the page; it comes back starting at the row.
			if err := c.pages.SeekToRow(local); err != nil {
				return err
			}
		} else {
			first = c.index.FirstRowIndex(p)
		}
		c.pageIdx = p
		c.pageEnd = c.base + c.groups[c.g].NumRows()
		if p+1 < c.index.NumPages() {
			c.pageEnd = c.base + c.index.FirstRowIndex(p+1)
		}
	} else {
		// Without an offset index, read the pages one after the other.
		first = 0
		if c.pageIdx >= 0 {
			first = c.pageEnd - c.base
		}
		c.pageIdx = next
	}
	page, err := c.pages.ReadPage()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if c.index == nil {
		c.pageEnd = c.base + first + page.NumRows()
	}
	c.vals, c.i, c.row = c.vals[:0], 0, c.base+first
	vr := page.Values()
	for {
		if len(c.vals) == cap(c.vals) {
			c.vals = append(c.vals, parquet.Value{})[:len(c.vals)]
		}
		n, err := vr.ReadValues(c.vals[len(c.vals):cap(c.vals)])
		c.vals = c.vals[:len(c.vals)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("a page yields no values")
		}
	}
	if len(c.vals) == 0 {
		return io.ErrUnexpectedEOF
	}
	return c.seek(row)
}

func (c *columnCursor) closePages() {
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}
