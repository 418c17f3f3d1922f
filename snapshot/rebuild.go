package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// IDLister lists the aggregate ids of a type in byte order, page by page.
// evento.EventStore implements it.
type IDLister interface {
	AggregateIDs(ctx context.Context, aggregateType, after string, limit int) ([]string, error)
}

// RebuildFunc refreshes the snapshot of one aggregate. aggregator's
// RebuildSnapshots supplies one that loads the aggregate with the current
// logic and saves its state.
type RebuildFunc func(ctx context.Context, id string) error

// Progress is how far a rebuild has come.
type Progress struct {
	// Total is the number of aggregates of the type counted before the
	// rebuild started, raised to Done if aggregates were created since.
	Total int
	// Done is the number of aggregates processed, Failed included.
	Done int
	// Failed is the number of aggregates whose RebuildFunc returned an
	// error.
	Failed int
}

// RebuildOptions tunes Rebuild. The zero value is ready to use.
type RebuildOptions struct {
	// PageSize is the number of ids read per AggregateIDs call (default
	// 500). Memory stays bounded by it whatever the number of aggregates.
	PageSize int
	// OnProgress, if set, is called after each aggregate with the progress
	// so far, on the rebuilding goroutine. It must not block for long.
	OnProgress func(Progress)
	// Logger receives a warning per failed aggregate (default
	// slog.Default()).
	Logger *slog.Logger
}

func (o *RebuildOptions) defaults() {
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Rebuild calls fn for every aggregate of aggregateType, in id order,
// reporting progress. It first counts the ids (one pass over the id index,
// PageSize at a time) so that progress has a total, then walks them again.
//
// An error from fn is logged and counted in Progress.Failed, and the walk
// goes on; Rebuild then returns an error naming how many failed and
// wrapping the first failure. When ctx is done Rebuild stops and returns the
// progress so far with an error wrapping ctx.Err(). An error listing ids
// stops the walk too.
//
// Rebuild blocks; run it in a goroutine, or use Start, to rebuild in the
// background. A rebuild can be interrupted and run again: fn is expected to
// skip aggregates that are already up to date.
func Rebuild(ctx context.Context, store IDLister, aggregateType string, fn RebuildFunc, opts RebuildOptions) (Progress, error) {
	opts.defaults()
	var p Progress
	total, err := countIDs(ctx, store, aggregateType, opts.PageSize)
	if err != nil {
		return p, err
	}
	p.Total = total
	var first error
	after := ""
	for {
		ids, err := store.AggregateIDs(ctx, aggregateType, after, opts.PageSize)
		if err != nil {
			return p, fmt.Errorf("snapshot: rebuild %s: list ids after %q: %w", aggregateType, after, err)
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return p, fmt.Errorf("snapshot: rebuild %s stopped at %d of %d: %w", aggregateType, p.Done, p.Total, err)
			}
			if err := fn(ctx, id); err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return p, fmt.Errorf("snapshot: rebuild %s stopped at %d of %d: %w", aggregateType, p.Done, p.Total, err)
				}
				p.Failed++
				if first == nil {
					first = fmt.Errorf("%s/%q: %w", aggregateType, id, err)
				}
				opts.Logger.WarnContext(ctx, "snapshot: rebuild failed for one aggregate",
					"type", aggregateType, "id", id, "err", err)
			}
			p.Done++
			if p.Done > p.Total {
				p.Total = p.Done
			}
			if opts.OnProgress != nil {
				opts.OnProgress(p)
			}
		}
		if len(ids) < opts.PageSize {
			break
		}
		after = ids[len(ids)-1]
	}
	if p.Failed > 0 {
		return p, fmt.Errorf("snapshot: rebuild %s: %d of %d aggregates failed, first: %w", aggregateType, p.Failed, p.Done, first)
	}
	return p, nil
}

func countIDs(ctx context.Context, store IDLister, aggregateType string, pageSize int) (int, error) {
	n := 0
	after := ""
	for {
		ids, err := store.AggregateIDs(ctx, aggregateType, after, pageSize)
		if err != nil {
			return n, fmt.Errorf("snapshot: rebuild %s: count ids after %q: %w", aggregateType, after, err)
		}
		n += len(ids)
		if len(ids) < pageSize {
			return n, nil
		}
		after = ids[len(ids)-1]
	}
}

// Job is a rebuild running in the background, started by Start.
type Job struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	progress Progress
	err      error
}

// Start runs Rebuild in a new goroutine and returns at once. Cancel ctx, or
// call Job.Cancel, to stop it; Wait for its result. opts.OnProgress is still
// called, and Job.Progress reads the same figures from any goroutine.
func Start(ctx context.Context, store IDLister, aggregateType string, fn RebuildFunc, opts RebuildOptions) *Job {
	ctx, cancel := context.WithCancel(ctx)
	j := &Job{cancel: cancel, done: make(chan struct{})}
	user := opts.OnProgress
	opts.OnProgress = func(p Progress) {
		j.mu.Lock()
		j.progress = p
		j.mu.Unlock()
		if user != nil {
			user(p)
		}
	}
	go func() {
		defer close(j.done)
		defer cancel()
		p, err := Rebuild(ctx, store, aggregateType, fn, opts)
		j.mu.Lock()
		j.progress, j.err = p, err
		j.mu.Unlock()
	}()
	return j
}

// Progress returns the progress so far. Safe for concurrent use.
func (j *Job) Progress() Progress {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.progress
}

// Done is closed when the rebuild has finished, failed or been cancelled.
func (j *Job) Done() <-chan struct{} { return j.done }

// Cancel stops the rebuild; Wait then returns an error wrapping
// context.Canceled unless it had already finished.
func (j *Job) Cancel() { j.cancel() }

// Wait blocks until the rebuild ends and returns its final progress and
// error (see Rebuild).
func (j *Job) Wait() (Progress, error) {
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.progress, j.err
}
