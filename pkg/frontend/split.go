package frontend

import "time"

// part is one piece of a split query: evaluation times start, start+step, …
// up to end (milliseconds).
type part struct{ start, end int64 }

// splitParts cuts req into the parts it runs as: at multiples of interval
// when the codec allows it, else one part.
func splitParts(req *Request, interval time.Duration) []part {
	if interval <= 0 || !req.Split || req.Step <= 0 {
		return []part{{req.Start, req.End}}
	}
	return splitRange(req.Start, req.End, req.Step, interval.Milliseconds())
}

// splitRange cuts [start, end] at multiples of interval. Every part keeps
// the original step grid (start + k*step), so the parts evaluate exactly the
// timestamps the whole query would.
func splitRange(start, end, step, interval int64) []part {
	var out []part
	for s := start; s <= end; {
		boundary := (floorDiv(s, interval) + 1) * interval
		e := s + floorDiv(boundary-1-s, step)*step
		if e > end {
			e = end
		}
		out = append(out, part{s, e})
		last := s + floorDiv(e-s, step)*step
		s = last + step
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// withRange is a copy of req over the part p.
func withRange(req *Request, p part) *Request {
	cp := *req
	cp.Start, cp.End = p.start, p.end
	return &cp
}
