// Package otelevento instruments evento with OpenTelemetry: traces,
// metrics, and trace ids in logs. Without a provider configured every span
// and instrument is the OpenTelemetry no-op.
//
// # Executor
//
// Wrap decorates an executor: an "evento.Write" span per Write (batch size,
// aggregates, backend), "evento.Read" and "evento.ReadAggregate" spans
// (query shape, page size, events read), and, because the wrapped executor
// is an aggregator.Observer, "evento.Load" spans (events replayed, from a
// snapshot or not) and "evento.Handle" spans (attempts, version conflicts)
// for the aggregator functions run on it. Write stores the writer's W3C
// trace context in each event's metadata (Metadata.Extra["traceparent"],
// see MetadataTraceParent). The wrapper keeps the optional interfaces of
// the executor it wraps (evento.TxAcknowledger, evento.Importer).
//
// # Subscriptions
//
// Instrument adds an "evento.Process" consumer span around each handler
// call of a subscription (key, partition, worker, event id, name, version,
// attempt, outcome), linked to the span that wrote the event, and by
// default a child of it: one trace shows a command and the read-model
// updates it caused, across processes. ObserveSubscriptions registers
// gauges of each subscriber's pending events, lag in seconds and parked
// events, read from the store at each collection.
//
// # Metrics
//
//	evento.write.duration        s         histogram  evento.backend, error.type
//	evento.write.events          {event}   counter    evento.backend
//	evento.read.duration         s         histogram  evento.backend, evento.read.operation, error.type
//	evento.read.events           {event}   counter    evento.backend, evento.read.operation
//	evento.command.duration      s         histogram  evento.backend, evento.aggregate.type, error.type
//	evento.command.conflicts     {conflict} counter   evento.backend, evento.aggregate.type
//	evento.handler.duration      s         histogram  evento.subscription.key, evento.handler.outcome
//	evento.handler.retries       {retry}   counter    evento.subscription.key
//	evento.handler.parked        {event}   counter    evento.subscription.key
//	evento.lease.gained          {lease}   counter    evento.subscription.key, evento.subscription.partition
//	evento.lease.lost            {lease}   counter    evento.subscription.key, evento.subscription.partition
//	evento.pebble.commit.writes  {write}   histogram  evento.backend (Pebble group commits)
//	evento.pebble.commit.events  {event}   histogram  evento.backend (Pebble group commits)
//	evento.subscription.pending  {event}   gauge      evento.subscription.key, evento.subscription.partition
//	evento.subscription.lag      s         gauge      evento.subscription.key, evento.subscription.partition
//	evento.subscription.parked   {event}   gauge      evento.subscription.key, evento.subscription.partition
//
// Package otelprom exports them to Prometheus.
//
// # Logs
//
// LogHandler wraps a slog.Handler to add trace_id and span_id to records
// logged with a context that carries a span. evento's packages name what
// they log with the keys of package evento (evento.LogSubscription,
// evento.LogEventID...).
package otelevento
