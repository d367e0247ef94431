package logpush

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
)

// DecodeJSON decodes Loki's JSON push body:
//
//	{"streams":[{"stream":{"k":"v"},"values":[["<ns>","<line>"],["<ns>","<line>",{"k":"v"}]]}]}
//
// Timestamps are strings of Unix nanoseconds (a number is an error, as in
// Loki); the optional third element of a value is its structured metadata,
// a flat object of strings.
func DecodeJSON(b []byte) ([]Stream, error) {
	// encoding/json would turn invalid UTF-8 into U+FFFD without a word.
	if !utf8.Valid(b) {
		return nil, errorf("JSON push body is not valid UTF-8")
	}
	var body struct {
		Streams []struct {
			Stream map[string]string   `json:"stream"`
			Values [][]json.RawMessage `json:"values"`
		} `json:"streams"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// A misspelt field would otherwise drop everything without a word.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			where := typeErr.Field
			if where == "" {
				where = "the body"
			}
			return nil, errorf("JSON push body: %s must not be a JSON %s; the body is {\"streams\":[{\"stream\":{…},\"values\":[[\"<ns>\",\"<line>\"]]}]}", where, typeErr.Value)
		}
		return nil, errorf("JSON push body: %v", err)
	}
	if dec.More() {
		return nil, errorf("JSON push body: more than one JSON value")
	}
	streams := make([]Stream, 0, len(body.Streams))
	for i, js := range body.Streams {
		ls, err := streamLabelsFromMap(js.Stream)
		if err != nil {
			return nil, errorf("stream %d: %v", i, err)
		}
		s := Stream{Labels: ls, Entries: make([]Entry, 0, len(js.Values))}
		for j, v := range js.Values {
			e, err := jsonEntry(v, i, j)
			if err != nil {
				return nil, err
			}
			s.Entries = append(s.Entries, e)
		}
		streams = append(streams, s)
	}
	return streams, nil
}

func jsonEntry(v []json.RawMessage, stream, n int) (Entry, error) {
	var e Entry
	if len(v) != 2 && len(v) != 3 {
		return e, errorf("stream %d entry %d: a value is [\"<ns timestamp>\", \"<line>\"] or [\"<ns timestamp>\", \"<line>\", {structured metadata}], not %d elements", stream, n, len(v))
	}
	var ts string
	if err := json.Unmarshal(v[0], &ts); err != nil {
		return e, errorf("stream %d entry %d: the timestamp must be a string of Unix nanoseconds, not %s", stream, n, truncate(string(v[0])))
	}
	nanos, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || nanos < 0 {
		return e, errorf("stream %d entry %d: timestamp %q is not Unix nanoseconds", stream, n, truncate(ts))
	}
	e.Timestamp = nanos
	if err := json.Unmarshal(v[1], &e.Line); err != nil {
		return e, errorf("stream %d entry %d: the line must be a string", stream, n)
	}
	e.Metadata = labels.EmptyLabels()
	if len(v) == 3 {
		var md map[string]string
		if err := json.Unmarshal(v[2], &md); err != nil {
			return e, errorf("stream %d entry %d: structured metadata must be an object of strings: %v", stream, n, err)
		}
		pairs := make([]labels.Label, 0, len(md))
		for k, val := range md {
			pairs = append(pairs, labels.Label{Name: k, Value: val})
		}
		if e.Metadata, err = metadata(pairs, entryAt{stream, n}); err != nil {
			return e, err
		}
	}
	return e, nil
}

func streamLabelsFromMap(m map[string]string) (labels.Labels, error) {
	if len(m) == 0 {
		return labels.EmptyLabels(), errors.New("a stream needs at least one label")
	}
	for k, v := range m {
		if k == "" {
			return labels.EmptyLabels(), errors.New("a stream label has an empty name")
		}
		if !IsLabelName(k) {
			return labels.EmptyLabels(), errors.New("invalid label name " + strconv.Quote(truncate(k)) + ": a label name is letters, digits and _, not starting with a digit")
		}
		if v == "" {
			return labels.EmptyLabels(), errors.New("label " + strconv.Quote(truncate(k)) + " has an empty value")
		}
	}
	return labels.FromMap(m), nil
}

// IsLabelName says whether s is a label name LogQL can select:
// [a-zA-Z_][a-zA-Z0-9_]*.
func IsLabelName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
