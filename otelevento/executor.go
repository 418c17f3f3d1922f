package otelevento

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

// Wrap returns x instrumented with OpenTelemetry: spans and metrics for
// Write, Import, Read and ReadAggregate, the writer's trace context stored
// in each written event's metadata (MetadataTraceParent), spans for the
// aggregate loads and commands run on it (it is an aggregator.Observer),
// and, on a Pebble store, the group-commit batch sizes. Every other method
// passes through unchanged.
//
// The result implements the optional interfaces x implements —
// evento.TxAcknowledger and evento.Importer — so transactional
// subscriptions and imports work through it; Unwrap returns x. On a Pebble
// store, Wrap sets the store's commit observer (replacing an earlier one).
//
// With no provider configured (the global providers before any is
// installed with otel.SetTracerProvider or otel.SetMeterProvider, or the
// no-op ones of trace/noop and metric/noop) the wrapper starts no span,
// reads no clock and allocates nothing, tens of nanoseconds per call (see
// the README's Observability section for the figures); it records once
// global providers are installed. Spans are skipped likewise when only a
// meter provider is configured. A nil x gives nil.
func Wrap(x evento.Executor, opts ...Option) evento.Executor {
	if x == nil {
		return nil
	}
	in := newInstruments(newConfig(opts))
	w := &executor{Executor: x, in: in, backend: x.Capabilities().Name}
	w.attrs = attribute.NewSet(AttrBackend.String(w.backend))
	w.metricAttrs = metric.WithAttributeSet(w.attrs)
	w.readAttrs = metric.WithAttributeSet(attribute.NewSet(AttrBackend.String(w.backend), AttrReadOperation.String("read")))
	w.aggAttrs = metric.WithAttributeSet(attribute.NewSet(AttrBackend.String(w.backend), AttrReadOperation.String("read_aggregate")))
	w.spanOpts = []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrBackend.String(w.backend), AttrDBSystem.String(dbSystem(w.backend))),
	}
	if o, ok := x.(commitObservable); ok {
		o.ObserveCommits(w.observeCommit)
	}
	_, tx := x.(evento.TxAcknowledger)
	_, imp := x.(evento.Importer)
	switch {
	case tx && imp:
		return txImportExecutor{w}
	case tx:
		return txExecutor{w}
	case imp:
		return importExecutor{w}
	}
	return w
}

// commitObservable is the Pebble store's commit hook
// (pebble.Store.ObserveCommits).
type commitObservable interface {
	ObserveCommits(func(writes, events int))
}

// dbSystem maps a backend name to the db.system.name semantic convention.
func dbSystem(backend string) string {
	switch backend {
	case "postgres":
		return "postgresql"
	}
	return backend
}

// executor is the instrumented executor; the wrapper types add the
// optional interfaces.
type executor struct {
	evento.Executor
	in          *instruments
	backend     string
	attrs       attribute.Set
	metricAttrs metric.MeasurementOption
	readAttrs   metric.MeasurementOption
	aggAttrs    metric.MeasurementOption
	spanOpts    []trace.SpanStartOption
}

type txExecutor struct{ *executor }
type importExecutor struct{ *executor }
type txImportExecutor struct{ *executor }

var (
	_ evento.Executor       = (*executor)(nil)
	_ aggregator.Observer   = (*executor)(nil)
	_ evento.TxAcknowledger = txExecutor{}
	_ evento.Importer       = importExecutor{}
	_ evento.TxAcknowledger = txImportExecutor{}
	_ evento.Importer       = txImportExecutor{}
)

// AcknowledgeTx passes through to the wrapped executor.
func (w txExecutor) AcknowledgeTx(ctx context.Context, l evento.Lease, fn func(tx evento.AckTx) (evento.Ack, error)) error {
	return w.Executor.(evento.TxAcknowledger).AcknowledgeTx(ctx, l, fn)
}

// AcknowledgeTx passes through to the wrapped executor.
func (w txImportExecutor) AcknowledgeTx(ctx context.Context, l evento.Lease, fn func(tx evento.AckTx) (evento.Ack, error)) error {
	return w.Executor.(evento.TxAcknowledger).AcknowledgeTx(ctx, l, fn)
}

// Import is the wrapped executor's Import, with a span and the write
// metrics. Imported events keep their metadata as is: no trace context is
// added.
func (w importExecutor) Import(ctx context.Context, events []evento.Event) error {
	return w.importEvents(ctx, events)
}

// Import is the wrapped executor's Import, with a span and the write
// metrics. Imported events keep their metadata as is.
func (w txImportExecutor) Import(ctx context.Context, events []evento.Event) error {
	return w.importEvents(ctx, events)
}

// Unwrap returns the wrapped executor.
func (w *executor) Unwrap() evento.Executor { return w.Executor }

func (w *executor) observeCommit(writes, events int) {
	ctx := context.Background()
	w.in.commitWrites.Record(ctx, int64(writes), w.metricAttrs)
	w.in.commitEvents.Record(ctx, int64(events), w.metricAttrs)
}

// Write is the wrapped executor's Write inside an "evento.Write" span. The
// span's context is stored in each event's metadata (MetadataTraceParent)
// unless WithoutTraceContext was given or the event has one already;
// without tracing, the context's span context is, if valid.
func (w *executor) Write(ctx context.Context, events []evento.Event) error {
	tracing, timed := w.in.tracing(), w.in.writeDur.Enabled(ctx) || w.in.writeEvents.Enabled(ctx)
	if !tracing {
		if !w.in.cfg.noInject {
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				inject(events, sc)
			}
		}
		if !timed {
			return w.Executor.Write(ctx, events)
		}
	}
	ctx, span, start := w.begin(ctx, "evento.Write", tracing, timed)
	if span != nil {
		if sc := span.SpanContext(); sc.IsValid() && !w.in.cfg.noInject {
			inject(events, sc)
		}
		if span.IsRecording() {
			span.SetAttributes(writeAttrs(events)...)
		}
	}
	err := w.Executor.Write(ctx, events)
	w.endWrite(ctx, span, start, len(events), err)
	return err
}

// begin starts a store call's span if tracing, and its clock if timed: the
// span is nil and the start zero when they are off.
func (w *executor) begin(ctx context.Context, name string, tracing, timed bool) (context.Context, trace.Span, time.Time) {
	var start time.Time
	if timed {
		start = time.Now()
	}
	var span trace.Span
	if tracing {
		ctx, span = w.in.tracer.Start(ctx, name, w.spanOpts...)
	}
	return ctx, span, start
}

func (w *executor) importEvents(ctx context.Context, events []evento.Event) error {
	tracing, timed := w.in.tracing(), w.in.writeDur.Enabled(ctx) || w.in.writeEvents.Enabled(ctx)
	if !tracing && !timed {
		return w.Executor.(evento.Importer).Import(ctx, events)
	}
	ctx, span, start := w.begin(ctx, "evento.Import", tracing, timed)
	if span != nil && span.IsRecording() {
		span.SetAttributes(writeAttrs(events)...)
	}
	err := w.Executor.(evento.Importer).Import(ctx, events)
	w.endWrite(ctx, span, start, len(events), err)
	return err
}

// endWrite records a write's metrics (when start is set) and ends its span
// (when there is one).
func (w *executor) endWrite(ctx context.Context, span trace.Span, start time.Time, n int, err error) {
	if !start.IsZero() {
		d := time.Since(start).Seconds()
		if err != nil {
			w.in.writeDur.Record(ctx, d, w.errAttrs(err))
		} else {
			w.in.writeDur.Record(ctx, d, w.metricAttrs)
			w.in.writeEvents.Add(ctx, int64(n), w.metricAttrs)
		}
	}
	endSpan(span, err)
}

// endSpan ends span, failed if err is not nil; a nil span is none.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		failSpan(span, err)
	}
	span.End()
}

// errAttrs are the metric attributes of a failed call.
func (w *executor) errAttrs(err error, extra ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append(extra, AttrBackend.String(w.backend), AttrErrorType.String(errorType(err)))...)
}

func failSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(AttrErrorType.String(errorType(err)))
}

// writeAttrs describes a batch: its size, its number of aggregates, and the
// aggregate when there is one.
func writeAttrs(events []evento.Event) []attribute.KeyValue {
	attrs := []attribute.KeyValue{AttrBatchSize.Int(len(events)), AttrDBOperation.String("write")}
	if len(events) == 0 {
		return attrs
	}
	n := 1
	first := &events[0]
	var seen map[evento.AggregateRef]struct{}
	for i := 1; i < len(events); i++ {
		e := &events[i]
		if e.AggregateType == first.AggregateType && e.AggregateID == first.AggregateID {
			continue
		}
		if seen == nil {
			seen = map[evento.AggregateRef]struct{}{{Type: first.AggregateType, ID: first.AggregateID}: {}}
		}
		ref := evento.AggregateRef{Type: e.AggregateType, ID: e.AggregateID}
		if _, ok := seen[ref]; !ok {
			seen[ref] = struct{}{}
			n++
		}
	}
	attrs = append(attrs, AttrBatchAggregates.Int(n))
	if n == 1 {
		attrs = append(attrs, AttrAggregateType.String(first.AggregateType), AttrAggregateID.String(first.AggregateID))
	}
	return attrs
}

// Read is the wrapped executor's Read inside an "evento.Read" span that
// records the query's shape and page size.
func (w *executor) Read(ctx context.Context, q evento.Query) (evento.Page, error) {
	tracing, timed := w.in.tracing(), w.in.readDur.Enabled(ctx) || w.in.readEvents.Enabled(ctx)
	if !tracing && !timed {
		return w.Executor.Read(ctx, q)
	}
	ctx, span, start := w.begin(ctx, "evento.Read", tracing, timed)
	if span != nil && span.IsRecording() {
		size, dir := q.Args.First, "forward"
		if q.Args.IsBackward() {
			size, dir = q.Args.Last, "backward"
		}
		span.SetAttributes(AttrDBOperation.String("read"), AttrQueryShape.String(QueryShape(q)),
			AttrQueryRouting.String(routingShape(q.Routing)), AttrPageSize.Int(size), AttrPageDirection.String(dir))
	}
	p, err := w.Executor.Read(ctx, q)
	w.endRead(ctx, span, start, "read", w.readAttrs, len(p.Events), err)
	return p, err
}

// endRead records a read's metrics (when start is set) and ends its span
// (when there is one) with the number of events read.
func (w *executor) endRead(ctx context.Context, span trace.Span, start time.Time, op string, attrs metric.MeasurementOption, n int, err error) {
	if !start.IsZero() {
		d := time.Since(start).Seconds()
		if err != nil {
			w.in.readDur.Record(ctx, d, w.errAttrs(err, AttrReadOperation.String(op)))
		} else {
			w.in.readDur.Record(ctx, d, attrs)
			w.in.readEvents.Add(ctx, int64(n), attrs)
		}
	}
	if span != nil && err == nil && span.IsRecording() {
		span.SetAttributes(AttrReadEvents.Int(n))
	}
	endSpan(span, err)
}

// ReadAggregate is the wrapped executor's ReadAggregate inside an
// "evento.ReadAggregate" span.
func (w *executor) ReadAggregate(ctx context.Context, aggregateType, id string, after uint64, limit int) ([]evento.Event, error) {
	tracing, timed := w.in.tracing(), w.in.readDur.Enabled(ctx) || w.in.readEvents.Enabled(ctx)
	if !tracing && !timed {
		return w.Executor.ReadAggregate(ctx, aggregateType, id, after, limit)
	}
	ctx, span, start := w.begin(ctx, "evento.ReadAggregate", tracing, timed)
	if span != nil && span.IsRecording() {
		span.SetAttributes(AttrDBOperation.String("read_aggregate"), AttrAggregateType.String(aggregateType), AttrAggregateID.String(id),
			AttrAggregateVersion.Int64(int64(after)), AttrPageSize.Int(limit))
	}
	evs, err := w.Executor.ReadAggregate(ctx, aggregateType, id, after, limit)
	w.endRead(ctx, span, start, "read_aggregate", w.aggAttrs, len(evs), err)
	return evs, err
}

// QueryShape describes the shape of q's filters, without its values: "all"
// for no filter, else each filter as "type", "type+id", "type+name" or
// "type+id+name", joined with " | " in order.
func QueryShape(q evento.Query) string {
	if len(q.Filters) == 0 {
		return "all"
	}
	var b strings.Builder
	for i, f := range q.Filters {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString("type")
		if f.AggregateID != "" {
			b.WriteString("+id")
		}
		if f.Name != "" {
			b.WriteString("+name")
		}
	}
	return b.String()
}

func routingShape(r evento.Routing) string {
	switch {
	case r.IsAny():
		return "any"
	case r.IsNone():
		return "none"
	}
	return "key"
}

// ObserveLoad implements aggregator.Observer: an "evento.Load" span around
// an aggregate load, with the number of events replayed and whether it
// started from a snapshot. Without tracing it does nothing.
func (w *executor) ObserveLoad(ctx context.Context, aggregateType, id string) (context.Context, func(aggregator.LoadInfo, error)) {
	if !w.in.tracing() {
		return ctx, noLoad
	}
	ctx, span := w.in.tracer.Start(ctx, "evento.Load", trace.WithSpanKind(trace.SpanKindInternal))
	if !span.IsRecording() {
		return ctx, func(aggregator.LoadInfo, error) { span.End() }
	}
	span.SetAttributes(AttrAggregateType.String(aggregateType), AttrAggregateID.String(id))
	return ctx, func(info aggregator.LoadInfo, err error) {
		span.SetAttributes(AttrAggregateVersion.Int64(int64(info.Version)), AttrLoadReplayed.Int(info.Replayed),
			AttrLoadFromSnapshot.Bool(info.FromSnapshot), AttrLoadSnapshotVer.Int64(int64(info.SnapshotVersion)))
		endSpan(span, err)
	}
}

// noLoad and noHandle are the observers' ends when nothing is observed.
var (
	noLoad   = func(aggregator.LoadInfo, error) {}
	noHandle = func(aggregator.HandleInfo, error) {}
)

// ObserveHandle implements aggregator.Observer: an "evento.Handle" span
// around a command (its loads and writes are its children), with its
// attempts and version conflicts, and the command metrics. With neither
// tracing nor the command metrics it does nothing.
func (w *executor) ObserveHandle(ctx context.Context, id string) (context.Context, func(aggregator.HandleInfo, error)) {
	tracing, timed := w.in.tracing(), w.in.commandDur.Enabled(ctx) || w.in.conflicts.Enabled(ctx)
	if !tracing && !timed {
		return ctx, noHandle
	}
	start := time.Now()
	var span trace.Span
	if tracing {
		ctx, span = w.in.tracer.Start(ctx, "evento.Handle", trace.WithSpanKind(trace.SpanKindInternal))
		if span.IsRecording() {
			span.SetAttributes(AttrAggregateID.String(id))
		}
	}
	return ctx, func(hi aggregator.HandleInfo, err error) {
		if timed {
			attrs := []attribute.KeyValue{AttrBackend.String(w.backend), AttrAggregateType.String(hi.AggregateType)}
			if hi.Conflicts > 0 {
				w.in.conflicts.Add(ctx, int64(hi.Conflicts), metric.WithAttributes(attrs...))
			}
			if err != nil {
				attrs = append(attrs, AttrErrorType.String(errorType(err)))
			}
			w.in.commandDur.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
		}
		if span != nil && span.IsRecording() {
			span.SetAttributes(AttrAggregateType.String(hi.AggregateType), AttrHandleAttempts.Int(hi.Attempts),
				AttrHandleConflicts.Int(hi.Conflicts), AttrHandleEvents.Int(hi.Events), AttrAggregateVersion.Int64(int64(hi.Version)))
		}
		endSpan(span, err)
	}
}
