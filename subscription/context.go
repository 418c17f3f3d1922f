package subscription

import (
	"context"
	"reflect"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

type envKey struct{}

// env is what a handler's context carries.
type env struct {
	exec      evento.Executor
	values    []any
	key       string
	partition uint32
	worker    string
	lease     func() LeaseInfo // nil outside a lease (Replay)
}

func withEnv(ctx context.Context, e *env) context.Context {
	return context.WithValue(ctx, envKey{}, e)
}

func envOf(ctx context.Context) *env {
	e, _ := ctx.Value(envKey{}).(*env)
	return e
}

// Executor returns the executor a handler runs on, or nil when ctx is not a
// handler's context.
func Executor(ctx context.Context) evento.Executor {
	if e := envOf(ctx); e != nil {
		return e.exec
	}
	return nil
}

// Value returns the shared value of type T added with Subscription.Data. A
// value whose dynamic type is T is preferred; otherwise, when T is an
// interface, the first value (in the order added) that implements it. The
// boolean is false when there is none or ctx is not a handler's context.
func Value[T any](ctx context.Context) (T, bool) {
	var zero T
	e := envOf(ctx)
	if e == nil {
		return zero, false
	}
	for _, v := range e.values {
		if t, ok := v.(T); ok && reflect.TypeOf(v) == reflect.TypeFor[T]() {
			return t, true
		}
	}
	for _, v := range e.values {
		if t, ok := v.(T); ok {
			return t, true
		}
	}
	return zero, false
}

// Info describes where a handler runs.
type Info struct {
	// Key is the subscription key.
	Key string
	// Partition is the partition being processed (0 without partitions).
	Partition uint32
	// WorkerID is the lease holder's id ("" during Replay).
	WorkerID string
}

// InfoFrom returns the subscription key, partition and worker of a handler's
// context; ok is false when ctx is not a handler's context.
func InfoFrom(ctx context.Context) (Info, bool) {
	e := envOf(ctx)
	if e == nil {
		return Info{}, false
	}
	return Info{Key: e.key, Partition: e.partition, WorkerID: e.worker}, true
}

// LeaseInfo is the lease a handler runs under.
type LeaseInfo struct {
	Key       string
	Partition uint32
	Holder    string
	// Token is the fencing token: it grows at every claim, so a handler
	// can fence its own side effects (store the token with its writes and
	// refuse a smaller one, or compare it in a conditional write).
	Token uint64
	// Deadline is the worker's local deadline (see Config.LeaseMargin) at
	// the time of the call; renewals move it later. The handler's context
	// is cancelled when it passes without a renewal.
	Deadline time.Time
}

// LeaseFromContext returns the lease a handler runs under; ok is false
// when ctx is not a handler's context or the handler runs without a lease
// (Replay).
func LeaseFromContext(ctx context.Context) (LeaseInfo, bool) {
	e := envOf(ctx)
	if e == nil || e.lease == nil {
		return LeaseInfo{}, false
	}
	return e.lease(), true
}

// Signals are optional callbacks a worker calls as things happen, so tests
// and instrumentation can wait for them instead of sleeping. Any field may be
// nil. They are called synchronously from the worker's goroutines, possibly
// concurrently for different partitions, and must return quickly.
type Signals struct {
	// LeaseGained is called after a lease is claimed, before processing.
	LeaseGained func(l evento.Lease)
	// LeaseLost is called when a renewal or an acknowledgement finds the
	// lease lost, or the local lease deadline passes without a successful
	// renewal (err wraps evento.ErrLeaseLost); processing of that partition
	// stopped at once.
	LeaseLost func(key string, partition uint32, err error)
	// LeaseReleased is called after a lease was released (stop or
	// rebalance).
	LeaseReleased func(key string, partition uint32)
	// ChunkAcked is called after every successful acknowledgement, with the
	// cursor stored and the number of events it covers (handled, skipped or
	// parked). The calls of one partition come in order and never overlap,
	// but one for an acknowledgement written in the background while a
	// worker catches up may run concurrently with the partition's handler
	// and its other signals.
	ChunkAcked func(key string, partition uint32, cursor string, events int)
	// Retrying is called when a handler failed and will be tried again
	// after delay.
	Retrying func(key string, partition uint32, id ulid.ULID, attempt int, delay time.Duration, err error)
	// Parked is called after an event was parked.
	Parked func(key string, partition uint32, id ulid.ULID, err error)
	// Stopped is called once when a worker has stopped, with the error
	// Worker.Err returns.
	Stopped func(err error)
}
