package otelevento_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/subscription"
)

// stubExec is an executor whose calls do nothing and allocate nothing, so
// that allocations measured through Wrap are the wrapper's.
type stubExec struct {
	evento.Executor
	writes int
	last   []evento.Event
}

func (*stubExec) Capabilities() evento.Capabilities { return evento.Capabilities{Name: "stub"} }

func (x *stubExec) Write(_ context.Context, events []evento.Event) error {
	x.writes++
	x.last = events
	return nil
}

func (*stubExec) Read(context.Context, evento.Query) (evento.Page, error) { return evento.Page{}, nil }

func (*stubExec) ReadAggregate(context.Context, string, string, uint64, int) ([]evento.Event, error) {
	return nil, nil
}

// offOptions are the configurations in which nothing records: the global
// providers with none installed (this test binary installs none; see
// TestGlobalProvidersInstalledLater), and the explicit no-op providers.
var offOptions = map[string][]otelevento.Option{
	"global": nil,
	"noop":   {otelevento.WithTracerProvider(tracenoop.NewTracerProvider()), otelevento.WithMeterProvider(metricnoop.NewMeterProvider())},
}

// Off costs nothing: with no provider, a handler call through Instrument's
// interceptor and the calls of Wrap's executor allocate nothing.
func TestOffAllocs(t *testing.T) {
	ctx := context.Background()
	for name, opts := range offOptions {
		t.Run(name, func(t *testing.T) {
			ic := otelevento.Instrument(subscription.New("k"), opts...).Config().Intercept
			e := &evento.Event{AggregateType: "t/A", AggregateID: "1", Version: 1, Name: "E"}
			c := subscription.Call{Key: "k", Event: e, Attempt: 1}
			var calls int
			next := func(ctx context.Context) error {
				if trace.SpanFromContext(ctx).IsRecording() {
					t.Error("handler context carries a recording span")
				}
				calls++
				return nil
			}
			if n := testing.AllocsPerRun(1000, func() { _ = ic(ctx, c, next) }); n != 0 {
				t.Errorf("interceptor: %v allocations per call, want 0", n)
			}
			if calls != 1001 {
				t.Errorf("next called %d times, want 1001", calls)
			}

			raw := &stubExec{}
			x := otelevento.Wrap(raw, opts...)
			events := []evento.Event{*e}
			q := evento.ByType("t/A").First(10, "")
			obs := x.(aggregator.Observer)
			for op, f := range map[string]func(){
				"Write":         func() { _ = x.Write(ctx, events) },
				"Read":          func() { _, _ = x.Read(ctx, q) },
				"ReadAggregate": func() { _, _ = x.ReadAggregate(ctx, "t/A", "1", 0, 10) },
				"ObserveLoad": func() {
					_, end := obs.ObserveLoad(ctx, "t/A", "1")
					end(aggregator.LoadInfo{}, nil)
				},
				"ObserveHandle": func() {
					_, end := obs.ObserveHandle(ctx, "1")
					end(aggregator.HandleInfo{}, nil)
				},
			} {
				if n := testing.AllocsPerRun(1000, f); n != 0 {
					t.Errorf("%s: %v allocations per call, want 0", op, n)
				}
			}
			if raw.writes != 1001 || raw.last[0].Metadata.Extra != nil {
				t.Errorf("%d writes reached the store, metadata %v; want 1001, no trace context", raw.writes, raw.last[0].Metadata.Extra)
			}
		})
	}
}

// Off still passes a trace context on, as the OpenTelemetry no-op spans
// do: a write in a context with a span context stores it in the events'
// metadata, and a handler of such an event gets it in its context.
func TestOffPassesTraceContext(t *testing.T) {
	tel := newTelemetry(t)
	ctx, span := tel.tp.Tracer("t").Start(context.Background(), "request")
	defer span.End()
	for name, opts := range offOptions {
		t.Run(name, func(t *testing.T) {
			raw := &stubExec{}
			x := otelevento.Wrap(raw, opts...)
			if err := x.Write(ctx, []evento.Event{{AggregateType: "t/A", AggregateID: "1", Version: 1, Name: "E"}}); err != nil {
				t.Fatal(err)
			}
			e := &raw.last[0]
			want := span.SpanContext()
			if got := otelevento.SpanContextOf(e); got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() {
				t.Fatalf("written trace context %v, want %v", got, span.SpanContext())
			}
			ic := otelevento.Instrument(subscription.New("k"), opts...).Config().Intercept
			err := ic(context.Background(), subscription.Call{Key: "k", Event: e, Attempt: 1}, func(ctx context.Context) error {
				if got := trace.SpanContextFromContext(ctx); got.TraceID() != span.SpanContext().TraceID() {
					t.Errorf("handler's trace %v, want the writer's %v", got.TraceID(), span.SpanContext().TraceID())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := len(tel.spans.Ended()); n != 0 {
		t.Errorf("%d spans ended, want none", n)
	}
}

const childEnv = "OTELEVENTO_GLOBAL_CHILD"

// Instrumentation made before the global providers are installed
// (otel.SetTracerProvider, otel.SetMeterProvider) records once they are.
// Installing them is for good, so the test runs in a child process.
func TestGlobalProvidersInstalledLater(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGlobalProvidersInstalledLater$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	ic := otelevento.Instrument(subscription.New("k")).Config().Intercept
	x := otelevento.Wrap(&stubExec{})
	e := &evento.Event{AggregateType: "t/A", AggregateID: "1", Version: 1, Name: "E"}
	call := func() {
		if err := ic(ctx, subscription.Call{Key: "k", Event: e, Attempt: 1}, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := x.Write(ctx, []evento.Event{*e}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	tel := newTelemetry(t)
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	call()
	if n, m := len(tel.ended("evento.Process")), len(tel.ended("evento.Write")); n != 1 || m != 1 {
		t.Errorf("%d handler and %d write spans after the providers were installed, want 1 and 1", n, m)
	}
	rm := tel.collect(t)
	for _, name := range []string{"evento.handler.duration", "evento.write.duration", "evento.write.events"} {
		if _, ok := findMetric(rm, name); !ok {
			t.Errorf("no %s after the meter provider was installed", name)
		}
	}
}
