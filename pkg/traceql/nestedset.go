package traceql

import (
	"cmp"
	"slices"
)

// nestedSets numbers a trace's tree: a depth-first walk from each root
// (a span without a parent in the trace, in start order) gives each span
// Left on entry and Right on exit from one counter starting at 1, so a
// span's descendants are exactly the spans whose Left lies between its
// Left and Right. Parent is the parent's Left, -1 for roots. Children are
// visited in start order. Spans on a parent cycle are not reached and
// keep 0s. Duplicate span IDs: children attach to the first span of the
// ID.
type nestedSets struct {
	left, right, parent []int32
}

func computeNestedSets(t *Trace) nestedSets {
	n := len(t.Spans)
	ns := nestedSets{left: make([]int32, n), right: make([]int32, n), parent: make([]int32, n)}
	byID := make(map[string]int, n)
	for i := range t.Spans {
		if _, dup := byID[string(t.Spans[i].ID)]; !dup {
			byID[string(t.Spans[i].ID)] = i
		}
	}
	children := make([][]int32, n)
	var roots []int32
	for i := range t.Spans {
		s := &t.Spans[i]
		p, ok := -1, false
		if !s.isRoot() {
			p, ok = byID[string(s.ParentID)]
		}
		if ok && p != i {
			children[p] = append(children[p], int32(i))
		} else {
			roots = append(roots, int32(i))
		}
	}
	byStart := func(a, b int32) int {
		return cmp.Or(cmp.Compare(t.Spans[a].Start, t.Spans[b].Start), cmp.Compare(a, b))
	}
	slices.SortFunc(roots, byStart)
	counter := int32(1)
	type frame struct {
		span int32
		next int // next child to visit
	}
	var stack []frame
	for _, r := range roots {
		ns.left[r], ns.parent[r] = counter, -1
		counter++
		stack = append(stack[:0], frame{span: r})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			kids := children[top.span]
			if top.next == 0 && len(kids) > 1 {
				slices.SortFunc(kids, byStart)
			}
			if top.next < len(kids) {
				c := kids[top.next]
				top.next++
				ns.left[c], ns.parent[c] = counter, ns.left[top.span]
				counter++
				stack = append(stack, frame{span: c})
				continue
			}
			ns.right[top.span] = counter
			counter++
			stack = stack[:len(stack)-1]
		}
	}
	return ns
}

// ComputeNestedSets stores the nested-set numbers of t's spans in their
// NestedSet fields, for a storage layer that keeps them with the spans.
func ComputeNestedSets(t *Trace) {
	ns := computeNestedSets(t)
	for i := range t.Spans {
		t.Spans[i].NestedSetLeft = ns.left[i]
		t.Spans[i].NestedSetRight = ns.right[i]
		t.Spans[i].NestedSetParent = ns.parent[i]
	}
}

// storedNestedSets returns the trace's stored nested-set numbers, or ok
// false when a span lacks them.
func storedNestedSets(t *Trace) (nestedSets, bool) {
	n := len(t.Spans)
	for i := range t.Spans {
		if t.Spans[i].NestedSetLeft == 0 {
			return nestedSets{}, false
		}
	}
	ns := nestedSets{left: make([]int32, n), right: make([]int32, n), parent: make([]int32, n)}
	for i := range t.Spans {
		ns.left[i] = t.Spans[i].NestedSetLeft
		ns.right[i] = t.Spans[i].NestedSetRight
		ns.parent[i] = t.Spans[i].NestedSetParent
	}
	return ns, true
}
