package otelevento

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/evento-go/evento"
)

// LogHandler returns a slog.Handler that adds the active span's trace and
// span ids (evento.LogTraceID, evento.LogSpanID, in hex) to every record
// logged with a context that carries a valid span, then passes the record
// to h. Log through the *Context methods (InfoContext...) for the ids to
// appear: evento's aggregator does, and so do handlers that log with their
// context.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ h slog.Handler }

func (l logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(evento.LogTraceID, sc.TraceID().String()), slog.String(evento.LogSpanID, sc.SpanID().String()))
	}
	return l.h.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.h.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.h.WithGroup(name)} }
