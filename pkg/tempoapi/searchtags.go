package tempoapi

import (
	"cmp"
	"net/http"
	"slices"
)

// The tags endpoints. v2 lists names by scope and typed values; v1, which
// Grafana falls back to when v2 fails, lists bare names and string values.
// Grafana asks /api/v2/search/tags?limit=5000 (no scope) and
// /api/v2/search/tag/<identifier>/values?q=<the filters so far>.

// scopeOrder is the order of the scopes in v2 answers; a scope unknown
// here follows them, by name.
var scopeOrder = []string{ScopeSpan, ScopeResource, ScopeEvent, ScopeLink, ScopeInstrumentation, ScopeIntrinsic}

// intrinsics are the TraceQL intrinsics the tags endpoints list for the
// "intrinsic" scope when the Backend lists none. Read only.
var intrinsics = []string{
	"duration", "event:name", "event:timeSinceStart", "instrumentation:name",
	"instrumentation:version", "kind", "name", "rootName", "rootServiceName",
	"span:duration", "span:id", "span:kind", "span:name", "span:parentID",
	"span:status", "span:statusMessage", "status", "statusMessage",
	"trace:duration", "trace:id", "trace:rootName", "trace:rootService",
	"traceDuration",
}

// serveTagsV1 is /api/search/tags: {"tagNames":[…]}, the names of the
// scope asked for, or of every scope but intrinsic when none is.
func (a *API) serveTagsV1(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, scopes, err := a.searchTags(r, tenant)
	if err != nil {
		return err
	}
	var names []string
	for _, s := range scopes {
		if req.Scope == "" && s.Name == ScopeIntrinsic {
			continue
		}
		names = append(names, s.Tags...)
	}
	return writeJSON(w, tagNamesJSON{TagNames: sortedUnique(names, req.Limit)})
}

// serveTagsV2 is /api/v2/search/tags:
// {"scopes":[{"name":"span","tags":[…]},…]}, the scopes with names in
// scopeOrder.
func (a *API) serveTagsV2(w http.ResponseWriter, r *http.Request, tenant string) error {
	_, scopes, err := a.searchTags(r, tenant)
	if err != nil {
		return err
	}
	out := tagScopesJSON{Scopes: make([]tagScopeJSON, 0, len(scopes))}
	for _, s := range scopes {
		out.Scopes = append(out.Scopes, tagScopeJSON(s))
	}
	return writeJSON(w, out)
}

// searchTags reads the parameters of a tags request (scope, q, start, end,
// limit) and returns the Backend's scopes merged, each with its names
// sorted, unique and at most limit, in scopeOrder, empty ones left out.
func (a *API) searchTags(r *http.Request, tenant string) (TagsRequest, []TagScope, error) {
	var req TagsRequest
	var err error
	if req.Scope, err = scopeParam(r); err != nil {
		return req, nil, err
	}
	req.Query = r.Form.Get("q")
	if req.Start, req.End, err = optionalRange(r); err != nil {
		return req, nil, err
	}
	if req.Limit, err = intParam(r, "limit", 0); err != nil {
		return req, nil, err
	}
	res, err := a.b.SearchTags(r.Context(), tenant, req)
	if err != nil {
		return req, nil, err
	}
	byName := map[string][]string{}
	for _, s := range res.Scopes {
		if req.Scope != "" && s.Name != req.Scope {
			continue
		}
		byName[s.Name] = append(byName[s.Name], s.Tags...)
	}
	if _, ok := byName[ScopeIntrinsic]; !ok && (req.Scope == "" || req.Scope == ScopeIntrinsic) {
		byName[ScopeIntrinsic] = intrinsics
	}
	out := make([]TagScope, 0, len(byName))
	for name, tags := range byName {
		if tags = sortedUnique(tags, req.Limit); len(tags) > 0 {
			out = append(out, TagScope{Name: name, Tags: tags})
		}
	}
	slices.SortFunc(out, func(x, y TagScope) int {
		if c := cmp.Compare(scopeRank(x.Name), scopeRank(y.Name)); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
	return req, out, nil
}

// scopeRank is a scope's place in scopeOrder, after it when unknown.
func scopeRank(name string) int {
	if i := slices.Index(scopeOrder, name); i >= 0 {
		return i
	}
	return len(scopeOrder)
}

// scopeParam reads scope: one of scopeOrder, or "" (also "all" and
// "none", as Tempo reads them) for every scope.
func scopeParam(r *http.Request) (string, error) {
	s := r.Form.Get("scope")
	switch {
	case s == "" || s == "all" || s == "none":
		return "", nil
	case slices.Contains(scopeOrder, s):
		return s, nil
	}
	return "", badf("invalid parameter \"scope\": %q is none of span, resource, event, link, instrumentation and intrinsic", s)
}

// sortedUnique returns a new slice of the sorted distinct strings of in,
// at most limit of them (all when limit is 0).
func sortedUnique(in []string, limit int) []string {
	out := slices.Compact(slices.Sorted(slices.Values(in)))
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// serveTagValuesV1 is /api/search/tag/<name>/values: {"tagValues":[…]}
// as strings, of a bare attribute name (span or resource).
func (a *API) serveTagValuesV1(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, values, err := a.tagValues(r, tenant, v1TagName(r.PathValue("tag")))
	if err != nil {
		return err
	}
	strs := make([]string, len(values))
	for i, v := range values {
		strs[i] = v.Value
	}
	return writeJSON(w, tagValuesJSON{TagValues: sortedUnique(strs, req.Limit)})
}

// serveTagValuesV2 is /api/v2/search/tag/<identifier>/values:
// {"tagValues":[{"type":"string","value":"…"},…]} of a TraceQL
// identifier.
func (a *API) serveTagValuesV2(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, values, err := a.tagValues(r, tenant, r.PathValue("tag"))
	if err != nil {
		return err
	}
	if req.Limit > 0 && len(values) > req.Limit {
		values = values[:req.Limit]
	}
	out := typedTagValuesJSON{TagValues: make([]typedTagValueJSON, len(values))}
	for i, v := range values {
		out.TagValues[i] = typedTagValueJSON(v)
	}
	return writeJSON(w, out)
}

// tagValues reads the parameters of a tag values request (q, start, end,
// limit) and returns the Backend's values sorted by value then type,
// without duplicates, an empty type made "string".
func (a *API) tagValues(r *http.Request, tenant, tag string) (TagValuesRequest, []TagValue, error) {
	req := TagValuesRequest{Tag: tag, Query: r.Form.Get("q")}
	var err error
	if req.Start, req.End, err = optionalRange(r); err != nil {
		return req, nil, err
	}
	if req.Limit, err = intParam(r, "limit", 0); err != nil {
		return req, nil, err
	}
	res, err := a.b.TagValues(r.Context(), tenant, req)
	if err != nil {
		return req, nil, err
	}
	values := res.Values
	for i := range values {
		if values[i].Type == "" {
			values[i].Type = "string"
		}
	}
	slices.SortFunc(values, func(x, y TagValue) int {
		if c := cmp.Compare(x.Value, y.Value); c != 0 {
			return c
		}
		return cmp.Compare(x.Type, y.Type)
	})
	return req, slices.Compact(values), nil
}
