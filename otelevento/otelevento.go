package otelevento

import (
	"context"
	"errors"
	"reflect"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/evento-go/evento"
)

// ScopeName is the instrumentation scope of evento's tracer and meter.
const ScopeName = "github.com/evento-go/evento/otelevento"

// Attribute keys of evento's spans and metrics.
const (
	AttrBackend          = attribute.Key("evento.backend")
	AttrBatchSize        = attribute.Key("evento.batch.size")
	AttrBatchAggregates  = attribute.Key("evento.batch.aggregates")
	AttrAggregateType    = attribute.Key("evento.aggregate.type")
	AttrAggregateID      = attribute.Key("evento.aggregate.id")
	AttrAggregateVersion = attribute.Key("evento.aggregate.version")
	AttrQueryShape       = attribute.Key("evento.query.shape")
	AttrQueryRouting     = attribute.Key("evento.query.routing")
	AttrPageSize         = attribute.Key("evento.page.size")
	AttrPageDirection    = attribute.Key("evento.page.direction")
	AttrReadEvents       = attribute.Key("evento.read.events")
	AttrReadOperation    = attribute.Key("evento.read.operation")
	AttrLoadReplayed     = attribute.Key("evento.load.replayed")
	AttrLoadFromSnapshot = attribute.Key("evento.load.from_snapshot")
	AttrLoadSnapshotVer  = attribute.Key("evento.load.snapshot_version")
	AttrHandleAttempts   = attribute.Key("evento.command.attempts")
	AttrHandleConflicts  = attribute.Key("evento.command.conflicts")
	AttrHandleEvents     = attribute.Key("evento.command.events")
	AttrSubscriptionKey  = attribute.Key("evento.subscription.key")
	AttrPartition        = attribute.Key("evento.subscription.partition")
	AttrWorker           = attribute.Key("evento.worker.id")
	AttrEventID          = attribute.Key("evento.event.id")
	AttrEventName        = attribute.Key("evento.event.name")
	AttrEventVersion     = attribute.Key("evento.event.version")
	AttrAttempt          = attribute.Key("evento.handler.attempt")
	AttrOutcome          = attribute.Key("evento.handler.outcome")
	AttrErrorType        = attribute.Key("error.type")
	AttrDBSystem         = attribute.Key("db.system.name")
	AttrDBOperation      = attribute.Key("db.operation.name")
)

// Option configures Wrap, Instrument and ObserveSubscriptions; each uses
// the options that concern it and ignores the others.
type Option func(*config)

type config struct {
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	noInject    bool
	handlerRoot bool
	lagKeys     []string
	lagInterval time.Duration
	lagTimeout  time.Duration
}

// WithTracerProvider sets the tracer provider (default: the global one,
// otel.GetTracerProvider, which is a no-op until one is installed).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the meter provider (default: the global one,
// otel.GetMeterProvider, which is a no-op until one is installed).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithoutTraceContext stops Wrap's executor from storing the writer's trace
// context in the events' metadata (MetadataTraceParent). Handler spans then
// have no link to their writer.
func WithoutTraceContext() Option { return func(c *config) { c.noInject = true } }

// WithHandlerRoots makes each handler span the root of a new trace, linked
// to its writer's span, instead of a child of the writer's span (the
// default, which puts a command and the read-model updates it caused in one
// trace). Use it when workers replay old histories, so that they do not add
// spans to traces that ended long ago.
func WithHandlerRoots() Option { return func(c *config) { c.handlerRoot = true } }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.lagTimeout <= 0 {
		c.lagTimeout = 10 * time.Second
	}
	return c
}

// Histogram bucket boundaries: latencies from 50µs to 10s, sizes in powers
// of two.
var (
	latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	sizeBuckets    = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
)

// instruments are the tracer and the metric instruments of one config.
// Instrument creation errors leave the no-op instrument in place (the OTel
// API returns a usable instrument with the error) and are reported to
// otel.Handle.
type instruments struct {
	cfg    config
	tracer trace.Tracer
	meter  metric.Meter
	traces traceMode

	writeDur     metric.Float64Histogram
	writeEvents  metric.Int64Counter
	readDur      metric.Float64Histogram
	readEvents   metric.Int64Counter
	commandDur   metric.Float64Histogram
	conflicts    metric.Int64Counter
	handlerDur   metric.Float64Histogram
	retries      metric.Int64Counter
	parked       metric.Int64Counter
	leaseGained  metric.Int64Counter
	leaseLost    metric.Int64Counter
	commitWrites metric.Int64Histogram
	commitEvents metric.Int64Histogram
}

func newInstruments(c config) *instruments {
	in := &instruments{cfg: c, tracer: c.tp.Tracer(ScopeName), meter: c.mp.Meter(ScopeName), traces: traceModeOf(c.tp)}
	m := in.meter
	var errs []error
	f64h := func(name, unit, desc string, b []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(b...))
		errs = append(errs, err)
		return h
	}
	i64h := func(name, unit, desc string, b []float64) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(b...))
		errs = append(errs, err)
		return h
	}
	i64c := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	in.writeDur = f64h("evento.write.duration", "s", "Duration of event store writes (appends).", latencyBuckets)
	in.writeEvents = i64c("evento.write.events", "{event}", "Events appended.")
	in.readDur = f64h("evento.read.duration", "s", "Duration of event store reads (a page, or an aggregate's events).", latencyBuckets)
	in.readEvents = i64c("evento.read.events", "{event}", "Events read.")
	in.commandDur = f64h("evento.command.duration", "s", "Duration of aggregate commands (aggregator.Handle), retries included.", latencyBuckets)
	in.conflicts = i64c("evento.command.conflicts", "{conflict}", "Version conflicts met by aggregate commands.")
	in.handlerDur = f64h("evento.handler.duration", "s", "Duration of subscription handler calls.", latencyBuckets)
	in.retries = i64c("evento.handler.retries", "{retry}", "Handler calls that failed and will be retried.")
	in.parked = i64c("evento.handler.parked", "{event}", "Events parked after their handler's retries were exhausted.")
	in.leaseGained = i64c("evento.lease.gained", "{lease}", "Subscription leases claimed.")
	in.leaseLost = i64c("evento.lease.lost", "{lease}", "Subscription leases lost (taken over, or the local deadline passed).")
	in.commitWrites = i64h("evento.pebble.commit.writes", "{write}", "Write calls gathered into one Pebble group commit.", sizeBuckets)
	in.commitEvents = i64h("evento.pebble.commit.events", "{event}", "Events written by one Pebble group commit.", sizeBuckets)
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
	}
	return in
}

// traceMode says whether a tracer provider records spans.
type traceMode uint8

const (
	// tracesOn: any provider but the ones below; spans are started (the
	// provider's sampler may still drop them).
	tracesOn traceMode = iota
	// tracesOff: a no-op provider (trace/noop, trace.NewNoopTracerProvider).
	tracesOff
	// tracesGlobal: the global provider while no provider was installed
	// (otel.SetTracerProvider); its tracers delegate to the one installed
	// later, so tracing starts then.
	tracesGlobal
)

// Package paths and type names of the providers that never record.
const (
	globalPkg = "go.opentelemetry.io/otel/internal/global"
	tracePkg  = "go.opentelemetry.io/otel/trace"
)

func traceModeOf(tp trace.TracerProvider) traceMode {
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		return tracesOff
	}
	t := reflect.TypeOf(tp)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.PkgPath() == globalPkg && t.Name() == "tracerProvider":
		return tracesGlobal
	case t.PkgPath() == tracePkg && t.Name() == "noopTracerProvider":
		return tracesOff
	}
	return tracesOn
}

// tracing reports whether spans are to be started: false with a no-op
// provider, and with the global one until a provider is installed. It
// costs an atomic load, so that the calls of a process without tracing
// skip the span, its options and its attributes.
//
// The global provider's no-op spans still carry their parent's span
// context: the callers that skip spans pass the trace context on
// themselves (Write's metadata, a handler's writer).
func (in *instruments) tracing() bool {
	switch in.traces {
	case tracesOff:
		return false
	case tracesGlobal:
		return otel.GetTracerProvider() != in.cfg.tp
	}
	return true
}

// errorType classifies err for the error.type attribute.
func errorType(err error) string {
	var ie *evento.InvalidEventError
	switch {
	case errors.Is(err, evento.ErrVersionConflict):
		return "version_conflict"
	case errors.As(err, &ie), errors.Is(err, evento.ErrInvalidEvent):
		return "invalid_event"
	case errors.Is(err, evento.ErrRoutingKey):
		return "routing_key"
	case errors.Is(err, evento.ErrInvalidQuery):
		return "invalid_query"
	case errors.Is(err, evento.ErrInvalidCursor):
		return "invalid_cursor"
	case errors.Is(err, evento.ErrNotFound):
		return "not_found"
	case errors.Is(err, evento.ErrClosed):
		return "closed"
	case errors.Is(err, evento.ErrDecode):
		return "decode"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "_OTHER"
}
