package otlpdepth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// refCheckProto is checkProto written the plain way, recursively: the
// offset at which the first field past max starts its content, or -1.
func refCheckProto(b []byte, off, depth, max int) int {
	for i := 0; i < len(b); {
		tag, n := refVarint(b[i:])
		if n == 0 || int32(tag>>3) <= 0 {
			return -1
		}
		i += n
		switch tag & 7 {
		case 0:
			if _, n = refVarint(b[i:]); n == 0 {
				return -1
			}
			i += n
		case 1:
			if len(b)-i < 8 {
				return -1
			}
			i += 8
		case 2:
			l, n := refVarint(b[i:])
			if n == 0 || l > uint64(len(b)-i-n) {
				return -1
			}
			i += n
			if l > 0 {
				if depth == max {
					return off + i
				}
				if r := refCheckProto(b[i:i+int(l)], off+i, depth+1, max); r >= 0 {
					return r
				}
			}
			i += int(l)
		case 3, 4:
		case 5:
			if len(b)-i < 4 {
				return -1
			}
			i += 4
		default:
			return -1
		}
	}
	return -1
}

// refVarint reads a varint as pdata does (10 bytes at most, the bits past
// 64 dropped); n is 0 when there is none.
func refVarint(b []byte) (x uint64, n int) {
	for n < len(b) && n < 10 {
		x |= uint64(b[n]&0x7f) << (7 * n)
		n++
		if b[n-1] < 0x80 {
			return x, n
		}
	}
	return 0, 0
}

func refusedAt(t *testing.T, err error) int {
	if err == nil {
		return -1
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error of type %T, want *Error: %v", err, err)
	}
	return e.Offset
}

// FuzzCheckProto checks checkProto against refCheckProto under bounds of 0
// to 8; that wrapping a body in a field makes it one level deeper; and that
// pdata decodes what CheckProto accepts as any request without dying.
func FuzzCheckProto(f *testing.F) {
	f.Add(metricsBody(f, 3, 2), uint8(5))
	f.Add(logsBody(f, 3), uint8(6))
	f.Add(nestedArrays(6, logBodyPath...), uint8(8))
	f.Add(chain(5, []byte("GET /api HTTP/1.1")), uint8(4))
	f.Add([]byte{0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, 0x01, 0x0a, 0x02, 0x0a, 0x00}, uint8(1))
	f.Add([]byte{0x0b, 0x0a, 0x02, 0x0a, 0x00, 0x0c}, uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, m uint8) {
		max := int(m % 9)
		got := refusedAt(t, checkProto(body, max))
		if want := refCheckProto(body, 0, 0, max); got != want {
			t.Fatalf("bound %d: checkProto refuses at %d, the plain walk at %d", max, got, want)
		}
		if len(body) > 0 {
			h := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), uint64(len(body)))
			wrapped := refusedAt(t, checkProto(append(h, body...), max+1))
			if want := got; want >= 0 {
				want += len(h)
				if wrapped != want {
					t.Fatalf("bound %d: wrapped, refused at %d, want %d", max, wrapped, want)
				}
			} else if wrapped >= 0 {
				t.Fatalf("bound %d: wrapped, refused at %d, want accepted", max, wrapped)
			}
		}
		if CheckProto(body) == nil {
			_ = pmetricotlp.NewExportRequest().UnmarshalProto(body)
			_ = plogotlp.NewExportRequest().UnmarshalProto(body)
			_ = ptraceotlp.NewExportRequest().UnmarshalProto(body)
		}
	})
}

// refCheckJSON is checkJSON written the plain way, a byte at a time.
func refCheckJSON(b []byte, max int) int {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > max {
				return i
			}
		case c == '}' || c == ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return -1
}

// jsonDepth is how deep valid JSON nests, by encoding/json.
func jsonDepth(t *testing.T, b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // 1e700 is valid JSON, but no float64
	depth, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("valid JSON: %v", err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzCheckJSON checks checkJSON against refCheckJSON under bounds of 0 to
// 8, and against encoding/json's idea of depth when the body is valid JSON.
func FuzzCheckJSON(f *testing.F) {
	js, err := plogotlp.NewExportRequestFromLogs(benchLogs(2)).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js, uint8(8))
	f.Add(nestedArraysJSON(3), uint8(8))
	f.Add([]byte(`[[["\\",[]]]]`), uint8(3))
	f.Add([]byte(`[[["\"[[[["]]]`), uint8(3))
	f.Add([]byte(`]]][[[`), uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, m uint8) {
		max := int(m % 9)
		got := refusedAt(t, checkJSON(body, max))
		if want := refCheckJSON(body, max); got != want {
			t.Fatalf("bound %d: checkJSON refuses at %d, the plain scan at %d", max, got, want)
		}
		if json.Valid(body) {
			if deep := jsonDepth(t, body) > max; deep != (got >= 0) {
				t.Fatalf("bound %d: valid JSON %d deep, refused at %d", max, jsonDepth(t, body), got)
			}
		}
	})
}
