package ruler

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"google.golang.org/grpc"
)

// RuleState answers Prometheus's /api/v1/rules and /api/v1/alerts for the
// request's tenant from every ruler in the ring: each evaluates a share of
// the groups, so each is asked (over gRPC, Rules) and the answers merged.
// A group a ruler is handing over may be loaded on two: the one evaluated
// last is kept. A ruler that cannot answer fails the request (503, naming
// it) rather than leaving its groups out unseen.
type RuleState struct {
	ring ring.ReadRing
	conn func(addr string) (grpc.ClientConnInterface, error)
}

// NewRuleState returns the rule state of the rulers of r, reached through
// conn.
func NewRuleState(r ring.ReadRing, conn func(addr string) (grpc.ClientConnInterface, error)) *RuleState {
	return &RuleState{ring: r, conn: conn}
}

// stateOp is every ruler that may hold groups: one joining loads them a
// handover delay ahead, one leaving until it is gone.
var stateOp = ring.NewOp([]ring.InstanceState{ring.ACTIVE, ring.JOINING, ring.LEAVING}, nil)

// stateTimeout bounds the call to one ruler.
const stateTimeout = 30 * time.Second

// ServeHTTP answers …/api/v1/rules or …/api/v1/alerts (the last element
// of the path). Pagination (group_limit, group_next_token) is not passed
// on: the answer holds every group.
func (s *RuleState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if !rulesPaths[path] {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	q.Del("group_limit")
	q.Del("group_next_token")
	rs, err := s.ring.GetAllHealthy(stateOp)
	if err != nil && !errors.Is(err, ring.ErrEmptyRing) {
		stateError(w, http.StatusServiceUnavailable, "reading the ruler ring: "+err.Error())
		return
	}
	type answer struct {
		addr string
		code int
		body []byte
		err  error
	}
	answers := make([]answer, len(rs.Instances))
	var wg sync.WaitGroup
	for i, in := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.addr = in.Addr
			conn, err := s.conn(in.Addr)
			if err != nil {
				a.err = err
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), stateTimeout)
			defer cancel()
			res, err := callRules(ctx, conn, path, q.Encode())
			if err != nil {
				a.err = err
				return
			}
			a.code, a.body = int(res.StatusCode), res.Body
		}()
	}
	wg.Wait()
	bodies := make([][]byte, 0, len(answers))
	for _, a := range answers {
		if a.err != nil {
			stateError(w, http.StatusServiceUnavailable, fmt.Sprintf("the ruler at %s did not answer its rule state: %v", a.addr, a.err))
			return
		}
		if a.code != http.StatusOK { // a bad parameter: every ruler says the same
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.code)
			_, _ = w.Write(a.body)
			return
		}
		bodies = append(bodies, a.body)
	}
	merge := mergeRules
	if path == "alerts" {
		merge = mergeAlerts
	}
	out, err := merge(bodies)
	if err != nil {
		stateError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func stateError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "unavailable", "error": msg})
}

// stateAnswer is one ruler's answer: Prometheus's envelope, its data kept
// as raw items.
type stateAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Groups []json.RawMessage `json:"groups,omitempty"`
		Alerts []json.RawMessage `json:"alerts,omitempty"`
	} `json:"data"`
	Warnings []string `json:"warnings,omitempty"`
	Infos    []string `json:"infos,omitempty"`
}

func decodeAnswers(bodies [][]byte) ([]stateAnswer, error) {
	out := make([]stateAnswer, len(bodies))
	for i, b := range bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("a ruler's rule state: %w", err)
		}
	}
	return out, nil
}

func envelope(data map[string]any, answers []stateAnswer) ([]byte, error) {
	res := map[string]any{"status": "success", "data": data}
	var warnings, infos []string
	for _, a := range answers {
		warnings = append(warnings, a.Warnings...)
		infos = append(infos, a.Infos...)
	}
	if len(warnings) > 0 {
		res["warnings"] = warnings
	}
	if len(infos) > 0 {
		res["infos"] = infos
	}
	return json.Marshal(res)
}

// mergeRules joins the rulers' groups, sorted by file and name as
// Prometheus lists them; of a group two rulers hold, the one evaluated
// last.
func mergeRules(bodies [][]byte) ([]byte, error) {
	answers, err := decodeAnswers(bodies)
	if err != nil {
		return nil, err
	}
	type group struct {
		Name           string    `json:"name"`
		File           string    `json:"file"`
		LastEvaluation time.Time `json:"lastEvaluation"`
		raw            json.RawMessage
	}
	byKey := map[[2]string]group{}
	for _, a := range answers {
		for _, raw := range a.Data.Groups {
			var g group
			if err := json.Unmarshal(raw, &g); err != nil {
				return nil, fmt.Errorf("a ruler's rule group: %w", err)
			}
			g.raw = raw
			k := [2]string{g.File, g.Name}
			if old, ok := byKey[k]; !ok || g.LastEvaluation.After(old.LastEvaluation) {
				byKey[k] = g
			}
		}
	}
	groups := make([]group, 0, len(byKey))
	for _, g := range byKey {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int { return cmp.Or(strings.Compare(a.File, b.File), strings.Compare(a.Name, b.Name)) })
	raws := make([]json.RawMessage, len(groups))
	for i, g := range groups {
		raws[i] = g.raw
	}
	return envelope(map[string]any{"groups": raws}, answers)
}

// mergeAlerts joins the rulers' alerts, one per label set (a group being
// handed over may be loaded on two rulers), sorted by labels.
func mergeAlerts(bodies [][]byte) ([]byte, error) {
	answers, err := decodeAnswers(bodies)
	if err != nil {
		return nil, err
	}
	type alert struct {
		Labels json.RawMessage `json:"labels"`
		raw    json.RawMessage
	}
	seen := map[string]bool{}
	var alerts []alert
	for _, a := range answers {
		for _, raw := range a.Data.Alerts {
			var al alert
			if err := json.Unmarshal(raw, &al); err != nil {
				return nil, fmt.Errorf("a ruler's alert: %w", err)
			}
			if seen[string(al.Labels)] {
				continue
			}
			seen[string(al.Labels)] = true
			al.raw = raw
			alerts = append(alerts, al)
		}
	}
	slices.SortFunc(alerts, func(a, b alert) int { return bytes.Compare(a.Labels, b.Labels) })
	raws := make([]json.RawMessage, len(alerts))
	for i, a := range alerts {
		raws[i] = a.raw
	}
	return envelope(map[string]any{"alerts": raws}, answers)
}
