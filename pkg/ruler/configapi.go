package ruler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// MaxGroupBytes bounds an uploaded rule group.
const MaxGroupBytes = 1 << 20

// ConfigAPI serves Mimir's ruler config API (base /prometheus/config/v1/rules)
// or Loki's (base /loki/api/v1/rules), which have one shape:
//
//	GET    <base>                      every namespace's groups (YAML)
//	GET    <base>/{namespace}          one namespace's
//	GET    <base>/{namespace}/{group}  one group
//	POST   <base>/{namespace}          set a group (YAML body): 202
//	DELETE <base>/{namespace}          a namespace: 202
//	DELETE <base>/{namespace}/{group}  a group: 202
//
// An uploaded group is checked by parse (ParseGroup: as promtool check
// rules checks a file, its errors naming line and column of the body;
// ParseLogQLGroup for LogQL rules). Requests carry their tenant in the
// context (pkg/util/tenant).
type ConfigAPI struct {
	store   *Store
	changed func()
	parse   func([]byte) (rulefmt.RuleGroup, []error)
	logger  *slog.Logger
	mux     *http.ServeMux
}

// NewConfigAPI returns the API over store at base; parse reads and checks
// an uploaded group.
func NewConfigAPI(store *Store, base string, parse func([]byte) (rulefmt.RuleGroup, []error), logger *slog.Logger) *ConfigAPI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &ConfigAPI{store: store, parse: parse, logger: logger, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+base, a.list)
	a.mux.HandleFunc("GET "+base+"/{namespace}", a.list)
	a.mux.HandleFunc("GET "+base+"/{namespace}/{group}", a.get)
	a.mux.HandleFunc("POST "+base+"/{namespace}", a.set)
	a.mux.HandleFunc("DELETE "+base+"/{namespace}", a.deleteNamespace)
	a.mux.HandleFunc("DELETE "+base+"/{namespace}/{group}", a.deleteGroup)
	return a
}

// OnChange makes the API call f after each change it makes.
func (a *ConfigAPI) OnChange(f func()) { a.changed = f }

func (a *ConfigAPI) notify() {
	if a.changed != nil {
		a.changed()
	}
}

// ServeHTTP serves the API.
func (a *ConfigAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *ConfigAPI) tenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		respondError(w, http.StatusUnauthorized, err.Error())
		return "", false
	}
	return id, true
}

// list answers every namespace's groups, or one namespace's (404 when it
// has none), as YAML.
func (a *ConfigAPI) list(w http.ResponseWriter, r *http.Request) {
	id, ok := a.tenant(w, r)
	if !ok {
		return
	}
	ns := r.PathValue("namespace")
	groups, err := a.store.List(r.Context(), id, ns)
	if err != nil {
		a.storeFailed(w, err)
		return
	}
	if ns != "" && len(groups) == 0 {
		respondError(w, http.StatusNotFound, "no rule groups found")
		return
	}
	respondYAML(w, groups)
}

func (a *ConfigAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := a.tenant(w, r)
	if !ok {
		return
	}
	g, err := a.store.Get(r.Context(), id, r.PathValue("namespace"), r.PathValue("group"))
	if errors.Is(err, ErrGroupNotFound) {
		respondError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		a.storeFailed(w, err)
		return
	}
	respondYAML(w, g)
}

func (a *ConfigAPI) set(w http.ResponseWriter, r *http.Request) {
	id, ok := a.tenant(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxGroupBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			respondError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the rule group is larger than %d bytes (ruler.MaxGroupBytes)", MaxGroupBytes))
			return
		}
		respondError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	g, errs := a.parse(body)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		respondError(w, http.StatusBadRequest, strings.Join(msgs, "; "))
		return
	}
	if err := a.store.Set(r.Context(), id, r.PathValue("namespace"), g); err != nil {
		a.storeFailed(w, err)
		return
	}
	a.notify()
	respondAccepted(w)
}

func (a *ConfigAPI) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := a.tenant(w, r)
	if !ok {
		return
	}
	a.deleted(w, a.store.Delete(r.Context(), id, r.PathValue("namespace"), r.PathValue("group")))
}

func (a *ConfigAPI) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	id, ok := a.tenant(w, r)
	if !ok {
		return
	}
	a.deleted(w, a.store.DeleteNamespace(r.Context(), id, r.PathValue("namespace")))
}

func (a *ConfigAPI) deleted(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrGroupNotFound):
		respondError(w, http.StatusNotFound, err.Error())
	case err != nil:
		a.storeFailed(w, err)
	default:
		a.notify()
		respondAccepted(w)
	}
}

func (a *ConfigAPI) storeFailed(w http.ResponseWriter, err error) {
	a.logger.Error("ruler config api: the bucket failed", "err", err)
	respondError(w, http.StatusInternalServerError, "the rule store failed: "+err.Error())
}

// decodeGroup reads one rule group and the YAML nodes of its rules (for
// the lines of errors), with the checks every group gets: known fields
// only and a name. node is nil when the rules cannot be checked.
func decodeGroup(body []byte) (rulefmt.RuleGroup, *rulefmt.RuleGroupNode, []error) {
	var g rulefmt.RuleGroup
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil {
		if errors.Is(err, io.EOF) {
			return g, nil, []error{errors.New("the body holds no rule group")}
		}
		return g, nil, []error{err}
	}
	var node rulefmt.RuleGroupNode
	if err := yaml.Unmarshal(body, &node); err != nil {
		return g, nil, []error{err}
	}
	var errs []error
	if g.Name == "" {
		errs = append(errs, errors.New("Groupname must not be empty"))
	}
	if len(node.Rules) != len(g.Rules) {
		return g, nil, append(errs, errors.New("the rules could not be read"))
	}
	return g, &node, errs
}

// PromQLGroups returns ParseGroup with the parser p.
func PromQLGroups(p parser.Parser) func([]byte) (rulefmt.RuleGroup, []error) {
	return func(body []byte) (rulefmt.RuleGroup, []error) { return ParseGroup(body, p) }
}

// ParseGroup reads one rule group (the body of a config API upload) and
// checks it as promtool check rules checks a file's groups: unknown
// fields, an empty name, and each rule (its expression, its for, labels
// and annotation templates), the errors naming line and column of body.
func ParseGroup(body []byte, p parser.Parser) (rulefmt.RuleGroup, []error) {
	g, node, errs := decodeGroup(body)
	if node == nil {
		return g, errs
	}
	for i, rule := range g.Rules {
		name := rule.Alert
		if name == "" {
			name = rule.Record
		}
		for _, we := range rule.Validate(node.Rules[i], model.UTF8Validation, p) {
			errs = append(errs, &rulefmt.Error{Group: g.Name, Rule: i + 1, RuleName: name, Err: we})
		}
	}
	return g, errs
}

func respondYAML(w http.ResponseWriter, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		respondError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(b)
}

// respondAccepted is a write's answer, as Mimir gives it.
func respondAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"success","data":null,"errorType":"","error":""}`))
}

// respondError answers in the Prometheus API's error shape, with the
// text under "message" too: what Grafana's ruler proxy shows of a JSON
// error (else it shows the whole body).
func respondError(w http.ResponseWriter, code int, msg string) {
	errType := "bad_data"
	if code >= 500 {
		errType = "server_error"
	}
	b, _ := json.Marshal(map[string]any{"status": "error", "data": nil, "errorType": errType, "error": msg, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
