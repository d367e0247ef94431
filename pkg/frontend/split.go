package frontend

// part is one piece of a split range query: evaluation times start,
// start+step, … up to end (milliseconds).
type part struct{ start, end int64 }

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
