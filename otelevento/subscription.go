package otelevento

import (
	"context"
	"errors"
	"time"

	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/subscription"
)

// Instrument adds tracing and metrics to the subscription s and returns
// it. Every handler call runs in an "evento.Process" span (a consumer span)
// with the subscription key, partition, worker, the event's id, name,
// aggregate and version, the attempt and the outcome; the span links to the
// span that wrote the event (read from its metadata, see
// MetadataTraceParent) and, unless WithHandlerRoots is given, continues
// that span's trace. The handler's context carries the span, so the
// handler's own writes through a wrapped executor join the trace.
//
// Metrics: evento.handler.duration, evento.handler.retries,
// evento.handler.parked, evento.lease.gained and evento.lease.lost, by
// subscription key (and partition for leases). With no provider
// configured (see Wrap) a handler call through it starts no span, reads
// no clock and allocates nothing. Instrument chains its
// callbacks after the Signals s has (subscription.JoinSignals): call
// Signals before Instrument, not after, or they replace its callbacks.
func Instrument(s *subscription.Subscription, opts ...Option) *subscription.Subscription {
	in := newInstruments(newConfig(opts))
	key := s.Key()
	h := &handlerObs{in: in, key: key}
	keyAttr := AttrSubscriptionKey.String(key)
	h.keyOpt = metric.WithAttributeSet(attribute.NewSet(keyAttr))
	for i, o := range outcomes {
		h.outcomeOpt[i] = metric.WithAttributeSet(attribute.NewSet(keyAttr, AttrOutcome.String(o)))
	}
	s.Intercept(h.intercept)
	sig := &subscription.Signals{
		LeaseGained: func(l evento.Lease) {
			in.leaseGained.Add(context.Background(), 1, h.partOpt(l.Partition))
		},
		LeaseLost: func(_ string, partition uint32, _ error) {
			in.leaseLost.Add(context.Background(), 1, h.partOpt(partition))
		},
		Retrying: func(string, uint32, ulid.ULID, int, time.Duration, error) {
			in.retries.Add(context.Background(), 1, h.keyOpt)
		},
		Parked: func(string, uint32, ulid.ULID, error) {
			in.parked.Add(context.Background(), 1, h.keyOpt)
		},
	}
	return s.Signals(subscription.JoinSignals(s.Config().Signals, sig))
}

// Handler outcomes (the evento.handler.outcome attribute).
var outcomes = [...]string{"ok", "error", "panic"}

const (
	outcomeOK = iota
	outcomeError
	outcomePanic
)

type handlerObs struct {
	in         *instruments
	key        string
	keyOpt     metric.MeasurementOption
	outcomeOpt [len(outcomes)]metric.MeasurementOption
}

func (h *handlerObs) partOpt(p uint32) metric.MeasurementOption {
	return metric.WithAttributes(AttrSubscriptionKey.String(h.key), AttrPartition.Int64(int64(p)))
}

func (h *handlerObs) intercept(ctx context.Context, c subscription.Call, next func(context.Context) error) error {
	tracing, timed := h.in.tracing(), h.in.handlerDur.Enabled(ctx)
	if !tracing && !timed {
		// Off: no span, clock or attribute.
		return next(h.withWriter(ctx, c.Event))
	}
	var start time.Time
	if timed {
		start = time.Now()
	}
	e := c.Event
	var span trace.Span
	if tracing {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
		if writer := SpanContextOf(e); writer.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: writer}))
			if h.in.cfg.handlerRoot {
				opts = append(opts, trace.WithNewRoot())
			} else {
				ctx = trace.ContextWithRemoteSpanContext(ctx, writer)
			}
		}
		ctx, span = h.in.tracer.Start(ctx, "evento.Process", opts...)
		if span.IsRecording() {
			span.SetAttributes(
				AttrSubscriptionKey.String(c.Key), AttrPartition.Int64(int64(c.Partition)), AttrWorker.String(c.WorkerID),
				AttrEventID.String(e.ID.String()), AttrEventName.String(e.Name), AttrEventVersion.Int64(int64(e.Version)),
				AttrAggregateType.String(e.AggregateType), AttrAggregateID.String(e.AggregateID), AttrAttempt.Int(c.Attempt),
			)
		}
	} else {
		ctx = h.withWriter(ctx, e)
	}
	err := next(ctx)
	outcome := outcomeOK
	switch {
	case errors.Is(err, subscription.ErrHandlerPanic):
		outcome = outcomePanic
	case err != nil:
		outcome = outcomeError
	}
	if timed {
		h.in.handlerDur.Record(ctx, time.Since(start).Seconds(), h.outcomeOpt[outcome])
	}
	if span != nil {
		if span.IsRecording() {
			span.SetAttributes(AttrOutcome.String(outcomes[outcome]))
			if err != nil {
				failSpan(span, err)
			}
		}
		span.End()
	}
	return err
}

// withWriter is ctx carrying the span context of e's writer, as the no-op
// span that a disabled tracer would start carries it, so that the
// handler's writes pass the trace on; ctx itself when e has none or
// handlers start their own traces (WithHandlerRoots).
func (h *handlerObs) withWriter(ctx context.Context, e *evento.Event) context.Context {
	if h.in.cfg.handlerRoot || e.Metadata.Extra[MetadataTraceParent] == "" {
		return ctx
	}
	if writer := SpanContextOf(e); writer.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, writer)
	}
	return ctx
}
