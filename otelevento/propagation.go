package otelevento

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/evento-go/evento"
)

// Metadata keys reserved for the writer's trace context, in
// evento.Metadata.Extra. Wrap's executor stores the W3C Trace Context of
// the span that wrote an event under MetadataTraceParent (and
// MetadataTraceState when the trace state is not empty) unless the event
// already has a MetadataTraceParent, and Instrument's handler spans link
// to it. Other code must not use these keys for anything else.
const (
	MetadataTraceParent = "traceparent"
	MetadataTraceState  = "tracestate"
)

var traceContext propagation.TraceContext

// SpanContextOf returns the span context of the writer of e, read from its
// metadata; the result is not valid (IsValid false) when e carries none or
// it does not parse.
func SpanContextOf(e *evento.Event) trace.SpanContext {
	if e.Metadata.Extra[MetadataTraceParent] == "" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier(e.Metadata.Extra))
	return trace.SpanContextFromContext(ctx)
}

// traceParent formats sc as a W3C traceparent header value.
func traceParent(sc trace.SpanContext) string {
	var b [55]byte
	copy(b[:], "00-")
	tid, sid := sc.TraceID().String(), sc.SpanID().String()
	copy(b[3:], tid)
	b[35] = '-'
	copy(b[36:], sid)
	b[52] = '-'
	flags := sc.TraceFlags()
	const hex = "0123456789abcdef"
	b[53], b[54] = hex[flags>>4], hex[flags&0xf]
	return string(b[:])
}

// inject stores sc in the metadata of every event that has no trace
// context yet. Each event gets its own Extra map: the caller's maps, which
// events of a batch often share, are not changed.
func inject(events []evento.Event, sc trace.SpanContext) {
	tp := traceParent(sc)
	ts := sc.TraceState().String()
	for i := range events {
		md := &events[i].Metadata
		if md.Extra[MetadataTraceParent] != "" {
			continue
		}
		x := make(map[string]string, len(md.Extra)+2)
		maps.Copy(x, md.Extra)
		x[MetadataTraceParent] = tp
		if ts != "" {
			x[MetadataTraceState] = ts
		}
		md.Extra = x
	}
}
