package lokiapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Live tail: /tail upgrades to a WebSocket and sends frames
//
//	{"streams":[{"stream":{…},"values":[["<ns>","<line>"],…]}],"dropped_entries":null}
//
// Canopy's store has no push of new entries to queriers, so the tail
// polls: every -querier.logs.tail-poll-interval it runs the log query,
// forward, over the entries newer than the last it sent and older than
// now less delay_for, at most limit of them (the rest come at the next
// poll, so nothing is dropped). The first poll starts at start (default an
// hour ago). An entry that arrives later than delay_for with a timestamp
// older than the last sent is not seen, and two entries with the same
// nanosecond split by the limit lose the second. The tail ends when the
// client goes, on an error (a close frame carries the message) or after
// -querier.logs.tail-max-duration.
const maxDelayFor = 5 // seconds, as Loki

const tailWriteTimeout = 10 * time.Second

var upgrader = websocket.Upgrader{
	// Grafana connects through its backend; Loki accepts any origin too.
	CheckOrigin: func(*http.Request) bool { return true },
}

// tailParams are a tail's parameters.
type tailParams struct {
	query string
	expr  logql.Expr
	limit int
	start int64
	delay time.Duration
}

func (a *API) parseTail(r *http.Request) (tailParams, error) {
	var p tailParams
	var err error
	if err = form(r); err != nil {
		return p, err
	}
	if p.query, p.expr, err = parseQuery(r); err != nil {
		return p, err
	}
	if _, ok := p.expr.(*logql.LogExpr); !ok {
		return p, badf("invalid parameter \"query\": only log queries can be tailed")
	}
	if p.limit, err = a.limit(r); err != nil {
		return p, err
	}
	if p.start, err = parseTime(r.Form.Get("start"), a.now().Add(-defaultSince).UnixNano()); err != nil {
		return p, badf("invalid parameter \"start\": %v", err)
	}
	if s := r.Form.Get("delay_for"); s != "" {
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 || d > maxDelayFor {
			return p, badf("invalid parameter \"delay_for\": %q is not a number of seconds from 0 to %d", s, maxDelayFor)
		}
		p.delay = time.Duration(d) * time.Second
	}
	return p, nil
}

// serveTail is /tail.
func (a *API) serveTail(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseTail(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.TailMaxDuration)
	defer cancel()
	// Read what the client sends (nothing but control frames) to notice
	// when it closes.
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	err = a.tail(ctx, conn, p)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err != nil && ctx.Err() == nil {
		code, text := status(ctx, err)
		wsCode := websocket.CloseInternalServerErr
		if code < http.StatusInternalServerError {
			wsCode = websocket.ClosePolicyViolation
		}
		msg = websocket.FormatCloseMessage(wsCode, truncateClose(text))
	}
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = conn.Close()
	<-done
}

// tail polls until ctx ends or an error.
func (a *API) tail(ctx context.Context, conn *websocket.Conn, p tailParams) error {
	last := p.start - 1
	ticker := time.NewTicker(a.cfg.TailPollInterval)
	defer ticker.Stop()
	for {
		end := a.now().Add(-p.delay).UnixNano()
		if end > last+1 {
			res, err := a.exec(ctx, p.query, p.expr, logql.Params{Start: last + 1, End: end, Limit: p.limit, Direction: logql.Forward})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(res.Streams) > 0 {
				for _, s := range res.Streams {
					for _, e := range s.Entries {
						last = max(last, e.Timestamp)
					}
				}
				if err := writeTailFrame(conn, res.Streams); err != nil {
					return nil // the client is gone
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func writeTailFrame(conn *websocket.Conn, ss []logql.Stream) error {
	out := &jw{}
	out.raw(`{"streams":`)
	out.streams(ss)
	out.raw(`,"dropped_entries":null}`)
	if err := conn.SetWriteDeadline(time.Now().Add(tailWriteTimeout)); err != nil {
		return err
	}
	return conn.WriteMessage(websocket.TextMessage, out.b)
}

// truncateClose shortens a close reason to what a control frame holds.
func truncateClose(s string) string {
	const limit = 120 // a control frame carries 125 bytes, 2 of them the code
	if len(s) <= limit {
		return s
	}
	for i := limit; i > 0; i-- {
		if s[i]&0xC0 != 0x80 { // not inside a UTF-8 sequence
			return s[:i]
		}
	}
	return ""
}
