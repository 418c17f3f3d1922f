package otelevento_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/subscription"
)

func TestLogHandler(t *testing.T) {
	tel := newTelemetry(t)
	var buf bytes.Buffer
	log := slog.New(otelevento.LogHandler(slog.NewTextHandler(&buf, nil))).With(evento.LogSubscription, "k")
	log.InfoContext(context.Background(), "no span")
	ctx, span := tel.tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "in span")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "trace_id") {
		t.Errorf("a line without a span has a trace id: %s", lines[0])
	}
	sc := span.SpanContext()
	for _, want := range []string{"trace_id=" + sc.TraceID().String(), "span_id=" + sc.SpanID().String(), "subscription=k"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
}

func TestQueryShape(t *testing.T) {
	for q, want := range map[*evento.Query]string{
		new(evento.All()):                 "all",
		new(evento.ByType("a")):           "type",
		new(evento.ByAggregate("a", "1")): "type+id",
		new(evento.ByName("a", "n").Or(evento.Filter{AggregateType: "b", AggregateID: "2", Name: "m"})): "type+name | type+id+name",
	} {
		if got := otelevento.QueryShape(*q); got != want {
			t.Errorf("QueryShape = %q, want %q", got, want)
		}
	}
}

// With WithHandlerRoots the handler span starts a new trace, linked to the
// writer; WithoutTraceContext stores nothing, so there is no link.
func TestHandlerRootsAndNoTraceContext(t *testing.T) {
	ctx := context.Background()
	b := backends()[0]
	for _, tc := range []struct {
		name       string
		opt        otelevento.Option
		link, root bool
	}{
		{"roots", otelevento.WithHandlerRoots(), true, true},
		{"no-trace-context", otelevento.WithoutTraceContext(), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			opts := append(tel.opts(), tc.opt)
			x := otelevento.Wrap(b.open(t), opts...)
			rctx, req := tel.tp.Tracer("request").Start(ctx, "request")
			if _, err := aggregator.Handle(rctx, x, "r1", func() *counter { return &counter{} }, increment(1)); err != nil {
				t.Fatal(err)
			}
			req.End()
			sub := subscription.New("roots").Handle("test/Counter", "Incremented", func(context.Context, *evento.Event) error { return nil })
			otelevento.Instrument(sub, opts...)
			if err := sub.CatchUp(ctx, x); err != nil {
				t.Fatal(err)
			}
			procs := tel.ended("evento.Process")
			if len(procs) != 1 {
				t.Fatalf("%d Process spans, want 1", len(procs))
			}
			p := procs[0]
			if got := len(p.Links()) == 1; got != tc.link {
				t.Errorf("linked %v, want %v (links %v)", got, tc.link, p.Links())
			}
			if got := p.SpanContext().TraceID() != req.SpanContext().TraceID() && !p.Parent().IsValid(); got != tc.root {
				t.Errorf("new root %v, want %v", got, tc.root)
			}
			if tc.link && p.Links()[0].SpanContext.TraceID() != req.SpanContext().TraceID() {
				t.Errorf("link to trace %v, want the request's %v", p.Links()[0].SpanContext.TraceID(), req.SpanContext().TraceID())
			}
		})
	}
}

// The caller's metadata map, shared by the events of a batch, is not
// changed by the injection, and an event's own traceparent is kept.
func TestInjectKeepsCallerMetadata(t *testing.T) {
	tel := newTelemetry(t)
	x := otelevento.Wrap(backends()[0].open(t), tel.opts()...)
	shared := map[string]string{"tenant": "t1"}
	own := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	evs := []evento.Event{
		{AggregateType: "test/Counter", AggregateID: "m1", Version: 1, Name: "Incremented", Metadata: evento.Metadata{Extra: shared}},
		{AggregateType: "test/Counter", AggregateID: "m1", Version: 2, Name: "Incremented", Metadata: evento.Metadata{Extra: map[string]string{otelevento.MetadataTraceParent: own}}},
	}
	ctx, span := tel.tp.Tracer("t").Start(context.Background(), "cmd")
	defer span.End()
	if err := x.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 {
		t.Errorf("the caller's map was changed: %v", shared)
	}
	if evs[0].Metadata.Extra["tenant"] != "t1" || !otelevento.SpanContextOf(&evs[0]).IsValid() {
		t.Errorf("event 0 metadata %v", evs[0].Metadata.Extra)
	}
	if evs[1].Metadata.Extra[otelevento.MetadataTraceParent] != own {
		t.Errorf("event 1's own traceparent replaced: %v", evs[1].Metadata.Extra)
	}
	if sc := otelevento.SpanContextOf(&evento.Event{Metadata: evento.Metadata{Extra: map[string]string{otelevento.MetadataTraceParent: "garbage"}}}); sc.IsValid() {
		t.Errorf("a malformed traceparent gave %v", sc)
	}
	if got := otelevento.SpanContextOf(&evs[0]); got.TraceID() != trace.SpanContextFromContext(ctx).TraceID() {
		t.Errorf("stored trace %v, want %v", got.TraceID(), trace.SpanContextFromContext(ctx).TraceID())
	}
}
