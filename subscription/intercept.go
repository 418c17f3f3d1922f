package subscription

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Call describes one handler call, for an Interceptor.
type Call struct {
	// Key is the subscription key.
	Key string
	// Partition is the partition being processed (0 without partitions).
	Partition uint32
	// WorkerID is the lease holder's id ("" during Replay).
	WorkerID string
	// Event is the event being handled. It is valid during the call only
	// and must not be changed.
	Event *evento.Event
	// Attempt is the attempt number, 1 for the first call of an event.
	Attempt int
}

// Interceptor runs around every handler call of a worker, CatchUp and
// Replay: tracing, metrics, logging. It must call next exactly once (with
// ctx or a context derived from it) before it returns, never after (next
// is reused for later calls), and should return next's error; it may wrap
// the error but must keep it (a nil error acknowledges the event). A panic
// of the handler reaches the interceptor as an error wrapping
// ErrHandlerPanic. An interceptor is called from the worker's goroutines,
// concurrently for different partitions.
type Interceptor func(ctx context.Context, c Call, next func(ctx context.Context) error) error

// Intercept adds ic around every handler call (Config.Intercept). Several
// interceptors nest in the order added: the first added is the outermost.
// It panics if ic is nil.
func (s *Subscription) Intercept(ic Interceptor) *Subscription {
	if ic == nil {
		panic("subscription: nil interceptor")
	}
	s.cfg.Intercept = chainInterceptors(s.cfg.Intercept, ic)
	return s
}

// chainInterceptors returns an interceptor running outer around inner.
func chainInterceptors(outer, inner Interceptor) Interceptor {
	if outer == nil {
		return inner
	}
	return func(ctx context.Context, c Call, next func(context.Context) error) error {
		return outer(ctx, c, func(ctx context.Context) error { return inner(ctx, c, next) })
	}
}

// invoke calls h on e through the configured interceptor, if any. Without
// one it is a plain call (the caller recovers a panic); with one, a panic
// of h is recovered inside next, so the interceptor sees it as an error.
// The next function comes from a pool (invocations), so that a call
// through an interceptor allocates nothing of its own.
func (s *session) invoke(ctx context.Context, h HandlerFunc, e *evento.Event, attempt int) error {
	ic := s.r.p.cfg.Intercept
	if ic == nil {
		return h(ctx, e)
	}
	c := Call{Key: s.r.p.cfg.Key, Partition: s.part, WorkerID: s.r.id, Event: e, Attempt: attempt}
	inv := invocations.Get().(*invocation)
	inv.s, inv.h, inv.e, inv.attempt = s, h, e, attempt
	err := ic(ctx, c, inv.next)
	*inv = invocation{next: inv.next}
	invocations.Put(inv)
	return err
}

// invocation is one handler call behind an interceptor: next is its run
// method, bound once when the invocation is made, so that it is not
// allocated at every call. An interceptor calls next before it returns
// (Interceptor), after which the invocation goes back to the pool.
type invocation struct {
	s       *session
	h       HandlerFunc
	e       *evento.Event
	attempt int
	next    func(context.Context) error
}

var invocations = sync.Pool{New: func() any {
	inv := &invocation{}
	inv.next = inv.run
	return inv
}}

// run calls the handler, turning a panic into an error wrapping
// ErrHandlerPanic.
func (inv *invocation) run(ctx context.Context) (err error) {
	s, e, attempt := inv.s, inv.e, inv.attempt
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "subscription: handler panicked",
				append(EventLogAttrs(e), slog.Int("attempt", attempt), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))...)
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	return inv.h(ctx, e)
}

// EventLogAttrs returns the log attributes that name an event, with the
// names every evento package uses (evento.LogEventID and the others).
func EventLogAttrs(e *evento.Event) []any {
	return []any{
		slog.String(evento.LogEventID, e.ID.String()),
		slog.String(evento.LogAggregateType, e.AggregateType),
		slog.String(evento.LogAggregateID, e.AggregateID),
		slog.Uint64(evento.LogVersion, e.Version),
		slog.String(evento.LogEventName, e.Name),
	}
}

// JoinSignals returns Signals that call every non-nil callback of sigs, in
// order; nil entries are skipped. Instrumentation uses it to add its
// callbacks to those a subscription has.
func JoinSignals(sigs ...*Signals) *Signals {
	var all []*Signals
	for _, s := range sigs {
		if s != nil {
			all = append(all, s)
		}
	}
	if len(all) == 1 {
		return all[0]
	}
	out := &Signals{}
	for _, s := range all {
		if f := s.LeaseGained; f != nil {
			prev := out.LeaseGained
			out.LeaseGained = func(l evento.Lease) {
				if prev != nil {
					prev(l)
				}
				f(l)
			}
		}
		if f := s.LeaseLost; f != nil {
			prev := out.LeaseLost
			out.LeaseLost = func(key string, partition uint32, err error) {
				if prev != nil {
					prev(key, partition, err)
				}
				f(key, partition, err)
			}
		}
		if f := s.LeaseReleased; f != nil {
			prev := out.LeaseReleased
			out.LeaseReleased = func(key string, partition uint32) {
				if prev != nil {
					prev(key, partition)
				}
				f(key, partition)
			}
		}
		if f := s.ChunkAcked; f != nil {
			prev := out.ChunkAcked
			out.ChunkAcked = func(key string, partition uint32, cursor string, events int) {
				if prev != nil {
					prev(key, partition, cursor, events)
				}
				f(key, partition, cursor, events)
			}
		}
		if f := s.Retrying; f != nil {
			prev := out.Retrying
			out.Retrying = func(key string, partition uint32, id ulid.ULID, attempt int, delay time.Duration, err error) {
				if prev != nil {
					prev(key, partition, id, attempt, delay, err)
				}
				f(key, partition, id, attempt, delay, err)
			}
		}
		if f := s.Parked; f != nil {
			prev := out.Parked
			out.Parked = func(key string, partition uint32, id ulid.ULID, err error) {
				if prev != nil {
					prev(key, partition, id, err)
				}
				f(key, partition, id, err)
			}
		}
		if f := s.Stopped; f != nil {
			prev := out.Stopped
			out.Stopped = func(err error) {
				if prev != nil {
					prev(err)
				}
				f(err)
			}
		}
	}
	return out
}
