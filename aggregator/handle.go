package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Decide is a command's decision: given the aggregate's current state, it
// returns the events to record, or an error (a business rule refused the
// command). It must not change the state it is given and may be called
// more than once, each time with a freshly loaded state, when Handle
// retries after a version conflict.
type Decide[A Aggregate] func(state A) ([]EventData, error)

// Result is what Handle did.
type Result[A Aggregate] struct {
	// ID is the aggregate's id (generated when Handle was given "").
	ID string
	// Version is the aggregate's version after the command: the committed
	// version, or the loaded one when decide returned no events.
	Version uint64
	// State is the aggregate's state at Version: the loaded state with the
	// committed events applied.
	State A
	// Events are the committed events, with their store-assigned IDs and
	// positions; nil when nothing was committed.
	Events []evento.Event
	// Attempts is the number of load-decide-commit rounds run (1 unless a
	// version conflict made Handle retry).
	Attempts int
}

// Handle runs one command against the aggregate id: it loads the current
// state into newAgg() (see Load; an aggregate that does not exist yet is
// the fresh value at version 0), calls decide, and commits the events it
// returns expecting the loaded version. When another writer committed in
// between (evento.ErrVersionConflict), it waits a short jittered pause and
// runs the whole round again, up to WithAttempts times (DefaultAttempts),
// then returns the conflict.
//
// An empty id creates a new aggregate under a fresh ULID (Result.ID). An
// error from decide is returned as is, so errors.Is and errors.As see the
// caller's own domain errors; nothing is committed then. WithMetadata and
// WithRoutingKey set the committed events' metadata and routing key; the
// load options (WithRevision, WithPolicy...) apply to the loads.
func Handle[A Aggregate](ctx context.Context, store Store, id string, newAgg func() A, decide Decide[A], opts ...Option) (Result[A], error) {
	o := buildOptions(opts)
	if id == "" {
		id = ulid.Make().String()
	}
	res := Result[A]{ID: id}
	err := o.retry(ctx, func(ctx context.Context, attempt int) error {
		res.Attempts = attempt
		agg := newAgg()
		typ := agg.AggregateType()
		v, err := o.load(ctx, store, id, agg, 0, true)
		if err != nil && !errors.Is(err, evento.ErrNotFound) {
			return err
		}
		res.State, res.Version = agg, v
		data, err := decide(agg)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		b := Append(typ, id, v)
		if o.metadata != nil {
			b.Metadata(*o.metadata)
		}
		if o.routingKey != nil {
			b.RoutingKey(*o.routingKey)
		}
		b.Events(data...)
		nv, err := b.Commit(ctx, store)
		if err != nil {
			return err
		}
		res.Version, res.Events = nv, b.Committed()
		for i := range res.Events {
			e := &res.Events[i]
			if err := agg.ApplyEvent(e); err != nil {
				return &appliedError{fmt.Errorf("aggregator: committed %s/%q v%d but applying %s failed: %w", typ, id, nv, e.Name, err)}
			}
		}
		return nil
	})
	var ae *appliedError
	if errors.As(err, &ae) {
		err = ae.err
	}
	return res, err
}

// appliedError carries an error met after a commit, which must not be
// retried. It deliberately has no Unwrap: Retry must not see a version
// conflict inside it and commit the events a second time. Handle unwraps
// it with errors.As before returning.
type appliedError struct{ err error }

func (e *appliedError) Error() string { return e.err.Error() }

// Retry calls fn until it returns anything but a version conflict, at most
// WithAttempts times (DefaultAttempts), pausing a short jittered while
// between attempts (WithBackoff). fn should load what it needs, decide and
// commit, all inside the call: it is the building block for commands that
// span several aggregates, such as a transfer committed with CommitAll.
// Retry returns fn's last error; when ctx is done during a pause it returns
// an error wrapping ctx.Err().
func Retry(ctx context.Context, fn func(ctx context.Context) error, opts ...Option) error {
	o := buildOptions(opts)
	return o.retry(ctx, func(ctx context.Context, _ int) error { return fn(ctx) })
}

func (o *options) retry(ctx context.Context, fn func(ctx context.Context, attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil || !errors.Is(err, evento.ErrVersionConflict) || attempt >= o.attempts {
			if err != nil && errors.Is(err, evento.ErrVersionConflict) && attempt > 1 {
				return fmt.Errorf("aggregator: gave up after %d attempts: %w", attempt, err)
			}
			return err
		}
		if d := o.pause(attempt + 1); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("aggregator: retry after version conflict: %w (last conflict: %v)", ctx.Err(), err)
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return fmt.Errorf("aggregator: retry after version conflict: %w", err)
		}
	}
}
