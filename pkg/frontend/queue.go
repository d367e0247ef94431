package frontend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// run queues one downstream call of tenant id and waits for its answer.
// The frontend's workers take the queues' jobs in turn.
func (s *stages) run(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	var (
		resp *Response
		err  = errors.New("query-frontend is shutting down")
	)
	j := &job{ctx: ctx, done: make(chan struct{}), run: func(ctx context.Context) {
		resp, err = s.down.Do(ctx, id, path, form, header)
	}}
	if qerr := s.queue.enqueue(id, j); qerr != nil {
		return nil, qerr
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		// The worker skips or abandons it; its result is not read.
		return nil, ctx.Err()
	}
	if err == nil && resp == nil {
		err = ctx.Err()
	}
	return resp, err
}

// job is one query (or part of a split query) waiting to run.
type job struct {
	ctx  context.Context
	run  func(context.Context)
	done chan struct{}
}

// queue is a fair queue: one FIFO per tenant, served in turn, so one
// tenant's burst of queries cannot starve the others.
type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	tenants map[string][]*job
	order   []string // tenants with waiting jobs, in service order
	next    int
	closed  bool
}

func newQueue() *queue {
	q := &queue{tenants: map[string][]*job{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// enqueue adds j to the tenant's queue. How many queries a tenant may have
// outstanding is bounded before their parts are queued.
func (q *queue) enqueue(tenant string, j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("query-frontend is shutting down")
	}
	jobs := q.tenants[tenant]
	if len(jobs) == 0 {
		q.order = append(q.order, tenant)
	}
	q.tenants[tenant] = append(jobs, j)
	q.cond.Signal()
	return nil
}

// dequeue blocks for the next job, taking tenants in turn. It returns nil
// once the queue is closed.
func (q *queue) dequeue() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	if q.next >= len(q.order) {
		q.next = 0
	}
	tenant := q.order[q.next]
	jobs := q.tenants[tenant]
	j := jobs[0]
	jobs[0] = nil
	if jobs = jobs[1:]; len(jobs) == 0 {
		delete(q.tenants, tenant)
		q.order = append(q.order[:q.next], q.order[q.next+1:]...)
	} else {
		q.tenants[tenant] = jobs
		q.next++
	}
	return j
}

// len is the number of waiting jobs of tenant.
func (q *queue) len(tenant string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tenants[tenant])
}

// close wakes every waiting worker; jobs still queued are finished without
// running (their requests are answered with the shutdown error).
func (q *queue) close() []*job {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	var left []*job
	for _, jobs := range q.tenants {
		left = append(left, jobs...)
	}
	q.tenants, q.order = map[string][]*job{}, nil
	q.cond.Broadcast()
	return left
}
