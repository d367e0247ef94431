// Package logging bridges the two logger APIs Canopy's dependencies use: dskit
// logs through go-kit, Prometheus's packages through log/slog. Canopy holds one
// go-kit logger and hands Prometheus packages a slog view of it.
package logging

import (
	"context"
	"log/slog"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Slog returns a *slog.Logger writing to l.
func Slog(l log.Logger) *slog.Logger {
	return slog.New(&handler{logger: l})
}

type handler struct {
	logger log.Logger
	attrs  []any
	group  string
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	kv := make([]any, 0, 2+len(h.attrs)+2*r.NumAttrs())
	kv = append(kv, "msg", r.Message)
	kv = append(kv, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, h.key(a.Key), a.Value.Resolve().Any())
		return true
	})
	var l log.Logger
	switch {
	case r.Level >= slog.LevelError:
		l = level.Error(h.logger)
	case r.Level >= slog.LevelWarn:
		l = level.Warn(h.logger)
	case r.Level >= slog.LevelInfo:
		l = level.Info(h.logger)
	default:
		l = level.Debug(h.logger)
	}
	return l.Log(kv...)
}

func (h *handler) key(k string) string {
	if h.group == "" {
		return k
	}
	return h.group + "." + k
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &handler{logger: h.logger, group: h.group, attrs: append([]any(nil), h.attrs...)}
	for _, a := range attrs {
		n.attrs = append(n.attrs, h.key(a.Key), a.Value.Resolve().Any())
	}
	return n
}

func (h *handler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &handler{logger: h.logger, attrs: h.attrs, group: g}
}
