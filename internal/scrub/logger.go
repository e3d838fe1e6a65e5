package scrub

import (
	"context"
	"log/slog"
)

// Logger returns l with every message and string attribute redacted by x (l itself
// when x is nil): errors and ids from the outside world are logged, and any could
// carry a secret.
func Logger(l *slog.Logger, x *Redactor) *slog.Logger {
	if x == nil {
		return l
	}
	return slog.New(handler{next: l.Handler(), x: x})
}

type handler struct {
	next slog.Handler
	x    *Redactor
}

func (h handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.x.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		clean := make([]any, 0, len(attrs))
		for _, g := range attrs {
			clean = append(clean, h.attr(g))
		}
		return slog.Group(a.Key, clean...)
	case slog.KindString, slog.KindAny: // strings, errors, Stringers
		return slog.String(a.Key, h.x.String(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v} // numbers, times, durations, bools
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		clean = append(clean, h.attr(a))
	}
	return handler{next: h.next.WithAttrs(clean), x: h.x}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{next: h.next.WithGroup(name), x: h.x}
}
