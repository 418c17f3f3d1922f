package otelevento_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/subscription"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is a minimal aggregate: the number of Incremented events.
type counter struct{ N int }

func (*counter) AggregateType() string { return "test/Counter" }
func (c *counter) ApplyEvent(e *evento.Event) error {
	if e.Name != "Incremented" {
		return aggregator.ErrUnknownEvent
	}
	c.N++
	return nil
}

type incremented struct{ By int }

func (incremented) EventName() string { return "Incremented" }

type backend struct {
	name string
	open func(t *testing.T) evento.Executor
}

func backends() []backend {
	return []backend{
		{"pebble", func(t *testing.T) evento.Executor {
			s, err := pebble.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatalf("open pebble: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"sqlite", func(t *testing.T) evento.Executor {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "evento.db"))
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T) evento.Executor {
			s, err := postgres.Open(context.Background(), postgrestest.DSN(t))
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
}

// telemetry is an SDK tracer and meter provider with in-memory readers.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) opts() []otelevento.Option {
	return []otelevento.Option{otelevento.WithTracerProvider(tel.tp), otelevento.WithMeterProvider(tel.mp)}
}

func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (tel *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// matches reports whether set has every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds up a counter's points (or a gauge's values) that carry want.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Value
			}
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return n
}

// histCount returns the number of recordings of a histogram with want, and
// their sum.
func histCount(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (uint64, float64) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0, 0
	}
	var n uint64
	var s float64
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Count
				s += p.Sum
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Count
				s += float64(p.Sum)
			}
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return n, s
}

func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0, false
	}
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				return p.Value, true
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				return float64(p.Value), true
			}
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return 0, false
}

func increment(by int) aggregator.Decide[*counter] {
	return func(*counter) ([]aggregator.EventData, error) {
		return []aggregator.EventData{incremented{By: by}}, nil
	}
}

func TestBackends(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Workload", func(t *testing.T) { testWorkload(t, b) })
			t.Run("Transactional", func(t *testing.T) { testTransactional(t, b) })
		})
	}
}

// testWorkload runs a scripted workload — commands inside a request span,
// a subscription catching up, a failing handler parked after a retry —
// and checks the spans, the trace link from each handler span to its
// writer across the store, and the metric values.
func testWorkload(t *testing.T, b backend) {
	ctx := context.Background()
	tel := newTelemetry(t)
	raw := b.open(t)
	x := otelevento.Wrap(raw, tel.opts()...)
	if u, ok := x.(interface{ Unwrap() evento.Executor }); !ok || u.Unwrap() != raw {
		t.Fatalf("Unwrap does not return the wrapped executor")
	}
	if _, ok := x.(evento.TxAcknowledger); !ok {
		t.Fatalf("wrapped %s executor lost evento.TxAcknowledger", b.name)
	}

	// Three commands, each in its own "request" span.
	const commands = 3
	reqTracer := tel.tp.Tracer("request")
	var requests []trace.SpanContext
	for i := range commands {
		rctx, req := reqTracer.Start(ctx, "POST /counters")
		res, err := aggregator.Handle(rctx, x, "c1", func() *counter { return &counter{} }, increment(i+1))
		req.End()
		if err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
		if res.Version != uint64(i+1) {
			t.Fatalf("handle %d: version %d", i, res.Version)
		}
		requests = append(requests, req.SpanContext())
	}

	writes := tel.ended("evento.Write")
	if len(writes) != commands {
		t.Fatalf("%d Write spans, want %d", len(writes), commands)
	}
	handles := tel.ended("evento.Handle")
	loads := tel.ended("evento.Load")
	if len(handles) != commands || len(loads) != commands {
		t.Fatalf("%d Handle and %d Load spans, want %d each", len(handles), len(loads), commands)
	}
	for i, w := range writes {
		if w.SpanContext().TraceID() != requests[i].TraceID() {
			t.Errorf("Write span %d is not in its request's trace", i)
		}
		if w.Parent().SpanID() != handles[i].SpanContext().SpanID() {
			t.Errorf("Write span %d is not a child of its Handle span", i)
		}
		attrs := attribute.NewSet(w.Attributes()...)
		if !matches(attrs, []attribute.KeyValue{otelevento.AttrBackend.String(b.name), otelevento.AttrBatchSize.Int(1),
			otelevento.AttrBatchAggregates.Int(1), otelevento.AttrAggregateType.String("test/Counter"), otelevento.AttrAggregateID.String("c1")}) {
			t.Errorf("Write span %d attributes: %v", i, w.Attributes())
		}
	}
	for i, l := range loads {
		attrs := attribute.NewSet(l.Attributes()...)
		want := []attribute.KeyValue{otelevento.AttrLoadReplayed.Int(i), otelevento.AttrLoadFromSnapshot.Bool(false),
			otelevento.AttrAggregateVersion.Int64(int64(i))}
		if !matches(attrs, want) {
			t.Errorf("Load span %d attributes: %v", i, l.Attributes())
		}
		if l.Parent().SpanID() != handles[i].SpanContext().SpanID() {
			t.Errorf("Load span %d is not a child of its Handle span", i)
		}
	}
	if a := attribute.NewSet(handles[0].Attributes()...); !matches(a, []attribute.KeyValue{
		otelevento.AttrHandleAttempts.Int(1), otelevento.AttrHandleConflicts.Int(0), otelevento.AttrHandleEvents.Int(1),
		otelevento.AttrAggregateType.String("test/Counter")}) {
		t.Errorf("Handle span attributes: %v", handles[0].Attributes())
	}

	// The round trip: the stored events, read from the unwrapped store,
	// carry their Write span's context.
	stored, err := raw.ReadAggregate(ctx, "test/Counter", "c1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stored {
		if got := otelevento.SpanContextOf(&stored[i]); !got.Equal(writes[i].SpanContext().WithRemote(true)) {
			t.Errorf("event %d: stored trace context %v, want the Write span's %v", i, got, writes[i].SpanContext())
		}
	}

	// A subscription handles them; a second aggregate's event fails once,
	// then is parked.
	handled := 0
	sub := subscription.New("projector").
		Handle("test/Counter", "Incremented", func(ctx context.Context, e *evento.Event) error {
			if e.AggregateID == "bad" {
				return errors.New("cannot project")
			}
			if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
				t.Errorf("handler context carries no span")
			}
			handled++
			return nil
		}).
		Retry(subscription.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}).
		OnExhausted(subscription.ParkEvent)
	otelevento.Instrument(sub, tel.opts()...)
	reg, err := otelevento.ObserveSubscriptions(x, tel.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()

	if err := sub.CatchUp(ctx, x); err != nil {
		t.Fatalf("catch up: %v", err)
	}
	if handled != commands {
		t.Fatalf("handled %d events, want %d", handled, commands)
	}
	procs := tel.ended("evento.Process")
	if len(procs) != commands {
		t.Fatalf("%d Process spans, want %d", len(procs), commands)
	}
	for i, p := range procs {
		w := writes[i].SpanContext()
		if len(p.Links()) != 1 || p.Links()[0].SpanContext.TraceID() != w.TraceID() || p.Links()[0].SpanContext.SpanID() != w.SpanID() {
			t.Errorf("Process span %d links %v, want the Write span %v", i, p.Links(), w)
		}
		if p.SpanContext().TraceID() != requests[i].TraceID() || p.Parent().SpanID() != w.SpanID() {
			t.Errorf("Process span %d is not a child of its writer's span in the request's trace", i)
		}
		if p.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("Process span %d kind %v", i, p.SpanKind())
		}
		want := []attribute.KeyValue{otelevento.AttrSubscriptionKey.String("projector"), otelevento.AttrPartition.Int64(0),
			otelevento.AttrEventID.String(stored[i].ID.String()), otelevento.AttrEventName.String("Incremented"),
			otelevento.AttrEventVersion.Int64(int64(i + 1)), otelevento.AttrAttempt.Int(1), otelevento.AttrOutcome.String("ok")}
		if !matches(attribute.NewSet(p.Attributes()...), want) {
			t.Errorf("Process span %d attributes: %v", i, p.Attributes())
		}
	}

	rm := tel.collect(t)
	be := otelevento.AttrBackend.String(b.name)
	if n := sum(t, rm, "evento.write.events", be); n != commands {
		t.Errorf("evento.write.events = %d, want %d", n, commands)
	}
	if n, s := histCount(t, rm, "evento.write.duration", be); n != commands || s <= 0 {
		t.Errorf("evento.write.duration: %d recordings summing to %v s, want %d and a positive sum", n, s, commands)
	}
	if n, _ := histCount(t, rm, "evento.read.duration", be, otelevento.AttrReadOperation.String("read")); n == 0 {
		t.Errorf("evento.read.duration has no page reads")
	}
	if n, _ := histCount(t, rm, "evento.command.duration", otelevento.AttrAggregateType.String("test/Counter")); n != commands {
		t.Errorf("evento.command.duration: %d recordings, want %d", n, commands)
	}
	key := otelevento.AttrSubscriptionKey.String("projector")
	if n, _ := histCount(t, rm, "evento.handler.duration", key, otelevento.AttrOutcome.String("ok")); n != commands {
		t.Errorf("evento.handler.duration ok: %d recordings, want %d", n, commands)
	}
	if n := sum(t, rm, "evento.lease.gained", key, otelevento.AttrPartition.Int64(0)); n != 1 {
		t.Errorf("evento.lease.gained = %d, want 1", n)
	}
	if v, ok := gauge(t, rm, "evento.subscription.pending", key); !ok || v != 0 {
		t.Errorf("evento.subscription.pending = %v (%v), want 0 after catch-up", v, ok)
	}
	if b.name == "pebble" {
		if n, s := histCount(t, rm, "evento.pebble.commit.events", be); n == 0 || s != commands {
			t.Errorf("evento.pebble.commit.events: %d commits of %v events, want >0 commits of %d", n, s, commands)
		}
	}

	// Two more events while no worker runs: the lag is read from the
	// store.
	for _, id := range []string{"c2", "bad"} {
		if _, err := aggregator.Handle(ctx, x, id, func() *counter { return &counter{} }, increment(1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // so the oldest pending event has a measurable age
	rm = tel.collect(t)
	if v, ok := gauge(t, rm, "evento.subscription.pending", key); !ok || v != 2 {
		t.Errorf("evento.subscription.pending = %v (%v), want 2 with no worker running", v, ok)
	}
	if v, ok := gauge(t, rm, "evento.subscription.lag", key); !ok || v < 0.02 || v > 60 {
		t.Errorf("evento.subscription.lag = %v s (%v), want the oldest pending event's age", v, ok)
	}

	if err := sub.CatchUp(ctx, x); err != nil {
		t.Fatalf("second catch-up: %v", err)
	}
	rm = tel.collect(t)
	if n := sum(t, rm, "evento.handler.retries", key); n != 1 {
		t.Errorf("evento.handler.retries = %d, want 1", n)
	}
	if n := sum(t, rm, "evento.handler.parked", key); n != 1 {
		t.Errorf("evento.handler.parked = %d, want 1", n)
	}
	if n, _ := histCount(t, rm, "evento.handler.duration", key, otelevento.AttrOutcome.String("error")); n != 2 {
		t.Errorf("evento.handler.duration error: %d recordings, want 2", n)
	}
	if v, ok := gauge(t, rm, "evento.subscription.pending", key); !ok || v != 0 {
		t.Errorf("evento.subscription.pending = %v (%v), want 0", v, ok)
	}
	if v, ok := gauge(t, rm, "evento.subscription.lag", key); !ok || v != 0 {
		t.Errorf("evento.subscription.lag = %v (%v), want 0", v, ok)
	}
	if v, ok := gauge(t, rm, "evento.subscription.parked", key); !ok || v != 1 {
		t.Errorf("evento.subscription.parked = %v (%v), want 1", v, ok)
	}
	var failed int
	for _, p := range tel.ended("evento.Process") {
		a := attribute.NewSet(p.Attributes()...)
		if matches(a, []attribute.KeyValue{otelevento.AttrAggregateID.String("bad"), otelevento.AttrOutcome.String("error")}) {
			failed++
			if p.Status().Code.String() != "Error" {
				t.Errorf("failed Process span status %v", p.Status())
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d failed Process spans for the bad event, want 2 (attempts 1 and 2)", failed)
	}
}

// testTransactional checks that a wrapped executor still runs a
// transactional subscription, with its handler spans.
func testTransactional(t *testing.T, b backend) {
	ctx := context.Background()
	tel := newTelemetry(t)
	x := otelevento.Wrap(b.open(t), tel.opts()...)
	for i := range 3 {
		if _, err := aggregator.Handle(ctx, x, "t1", func() *counter { return &counter{} }, increment(i)); err != nil {
			t.Fatal(err)
		}
	}
	var inTx int
	sub := subscription.New("tx").Transactional(true).
		Handle("test/Counter", "Incremented", func(ctx context.Context, e *evento.Event) error {
			if subscription.Tx(ctx) != nil && trace.SpanFromContext(ctx).SpanContext().IsValid() {
				inTx++
			}
			return nil
		})
	otelevento.Instrument(sub, tel.opts()...)
	if err := sub.CatchUp(ctx, x); err != nil {
		t.Fatalf("transactional catch-up through the wrapper: %v", err)
	}
	if inTx != 3 {
		t.Fatalf("%d handler calls ran in a transaction with a span, want 3", inTx)
	}
	if n := len(tel.ended("evento.Process")); n != 3 {
		t.Fatalf("%d Process spans, want 3", n)
	}
}
