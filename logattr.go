package evento

// Log attribute keys. Every evento package that logs through log/slog (the
// backends, the subscription workers, the aggregator) names what it logs
// with these keys, so one query finds an event, an aggregate or a
// subscription in the lines of every part. otelevento.LogHandler adds
// LogTraceID and LogSpanID when a span is active.
const (
	// LogSubscription is the subscription key.
	LogSubscription = "subscription"
	// LogPartition is the subscription partition.
	LogPartition = "partition"
	// LogWorker is the worker id (the lease holder).
	LogWorker = "worker"
	// LogEventID is the event's ULID.
	LogEventID = "event_id"
	// LogEventName is the event's name.
	LogEventName = "event_name"
	// LogAggregateType is the aggregate type.
	LogAggregateType = "aggregate_type"
	// LogAggregateID is the aggregate id.
	LogAggregateID = "aggregate_id"
	// LogVersion is an aggregate version.
	LogVersion = "version"
	// LogBackend is the storage backend's name (Capabilities.Name).
	LogBackend = "backend"
	// LogError is an error.
	LogError = "error"
	// LogTraceID is the active span's trace id (hex).
	LogTraceID = "trace_id"
	// LogSpanID is the active span's id (hex).
	LogSpanID = "span_id"
)
