package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/snapshot"
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
	// Load is how the last attempt loaded the state (see LoadWithInfo).
	Load LoadInfo
	// SnapshotSaved reports whether Handle saved a snapshot of State at
	// Version after the commit (the policy's Every was reached).
	SnapshotSaved bool
}

// Handle runs one command against the aggregate id: it loads the current
// state into newAgg() (see Load; an aggregate that does not exist yet is
// the fresh value at version 0), calls decide, and commits the events it
// returns expecting the loaded version. When another writer committed in
// between (evento.ErrVersionConflict), it pauses and runs the whole round
// again, as Retry does: by default for up to DefaultRetryFor (WithRetryFor)
// with jittered, capped pauses (WithBackoff), then returns the last
// conflict wrapped. A done ctx ends the retries at once with an error
// wrapping ctx.Err(). Any other error (from the load, decide or the store)
// is returned without a retry, and so is an error met after the commit
// (applying the committed events to the state): a committed command is
// never run twice.
//
// An empty id creates a new aggregate under a fresh ULID (Result.ID). An
// error from decide is returned as is, so errors.Is and errors.As see the
// caller's own domain errors; nothing is committed then. WithMetadata and
// WithRoutingKey set the committed events' metadata and routing key; the
// load options (WithRevision, WithPolicy...) apply to the loads.
//
// # Snapshots
//
// The command path is where snapshots are saved by default. After a
// successful commit, when the aggregate declares a revision and the
// events applied since its newest snapshot (replayed by the load plus
// committed) reach the policy's Every, Handle saves the new state at the
// committed version and prunes to the policy's Keep
// (snapshot.DefaultPolicy: every 100 events, keep 2). The save runs inline
// after the commit; a failure is logged and does not fail the command,
// which is committed already. Result.SnapshotSaved and Result.Load tell
// what happened. The load itself saves nothing unless WithSnapshotOnLoad
// is given.
func Handle[A Aggregate](ctx context.Context, store Store, id string, newAgg func() A, decide Decide[A], opts ...Option) (Result[A], error) {
	o := buildOptions(opts)
	if id == "" {
		id = ulid.Make().String()
	}
	res := Result[A]{ID: id}
	ctx, observed := observeHandle[A](ctx, store, id)
	err := o.retry(ctx, func(ctx context.Context, attempt int) error {
		res.Attempts = attempt
		agg := newAgg()
		typ := agg.AggregateType()
		info, err := o.load(ctx, store, id, agg, 0, o.snapshotOnLoad)
		if err != nil && !errors.Is(err, evento.ErrNotFound) {
			return err
		}
		v := info.Version
		res.State, res.Version, res.Load, res.SnapshotSaved = agg, v, info, false
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
		// Events applied since the newest snapshot: those the load
		// replayed (none if it saved one) and those just committed.
		since := info.Replayed + len(res.Events)
		if info.SnapshotSaved {
			since = len(res.Events)
		}
		if rev := o.revisionFor(agg); rev != "" && snapshot.Decodable(agg) && o.policyFor(agg).Due(since) {
			// Never an error here: strictSave is off for commands.
			res.SnapshotSaved, _ = o.saveDue(ctx, store, agg, rev, &res.Events[len(res.Events)-1])
		}
		return nil
	})
	var ae *appliedError
	if errors.As(err, &ae) {
		err = ae.err
	}
	if observed != nil {
		observed(&res, err)
	}
	return res, err
}

// appliedError carries an error met after a commit, which must not be
// retried. It deliberately has no Unwrap: Retry must not see a version
// conflict inside it and commit the events a second time. Handle unwraps
// it with errors.As before returning.
type appliedError struct{ err error }

func (e *appliedError) Error() string { return e.err.Error() }

// Retry calls fn until it returns anything but an error wrapping
// evento.ErrVersionConflict. fn should load what it needs, decide and
// commit, all inside the call: it is the building block for commands that
// span several aggregates, such as a transfer committed with CommitAll.
//
// The policy is the same for every backend. Retries go on for up to
// DefaultRetryFor from the first attempt (WithRetryFor), with no count
// limit unless WithAttempts sets one; a time budget rather than a small
// count, because with N writers racing on one aggregate the last may need
// about N attempts. Between attempts Retry pauses for a decorrelated-jitter
// duration between DefaultBackoff and DefaultMaxBackoff (WithBackoff; see
// DefaultRetryFor for why). When the budget runs out it returns the last
// conflict, wrapped (errors.Is still sees evento.ErrVersionConflict); when
// ctx is done during a pause it returns at once with an error wrapping
// ctx.Err(). Any other error from fn is returned as is, unretried.
func Retry(ctx context.Context, fn func(ctx context.Context) error, opts ...Option) error {
	o := buildOptions(opts)
	return o.retry(ctx, func(ctx context.Context, _ int) error { return fn(ctx) })
}

func (o *options) retry(ctx context.Context, fn func(ctx context.Context, attempt int) error) error {
	start := o.now()
	var pause time.Duration // the previous drawn pause, for decorrelated jitter
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil || !errors.Is(err, evento.ErrVersionConflict) {
			return err
		}
		elapsed := o.now().Sub(start)
		left := o.retryFor - elapsed
		if (o.attempts > 0 && attempt >= o.attempts) || (o.retryFor > 0 && left <= 0) {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("aggregator: gave up after %d attempts in %v: %w", attempt, elapsed.Round(time.Millisecond), err)
		}
		pause = o.nextPause(pause)
		d := pause
		if o.retryFor > 0 {
			d = min(d, left)
		}
		if serr := o.sleep(ctx, d); serr != nil {
			return fmt.Errorf("aggregator: retry after version conflict: %w (last conflict: %v)", serr, err)
		}
	}
}
