package aggregator

import (
	"context"
	"fmt"

	"github.com/evento-go/evento/snapshot"
)

// RebuildSnapshots brings the snapshots of every aggregate of A's type up to
// date with its current revision: for each id (walked with
// exec.AggregateIDs, a page at a time) it loads the aggregate, starting
// from a snapshot of the current revision if there is one, and saves a
// snapshot at the current version unless one is already there. Call it
// after deploying aggregate logic with a new revision, so that loads do not
// each replay the full history once; it is safe to interrupt and run again,
// and aggregates already up to date cost one snapshot read and one event
// read.
//
// Each save also prunes the aggregate's snapshots to the policy's Keep
// (snapshot.DefaultKeep unless set): older ones and those of other
// revisions are deleted. Progress, paging and the logger
// come from WithRebuildOptions; see snapshot.Rebuild for errors and
// cancellation. It blocks: use StartRebuild to run it in the background.
func RebuildSnapshots[A Aggregate](ctx context.Context, store Store, newAgg func() A, opts ...Option) (snapshot.Progress, error) {
	fn, typ, ro, err := rebuildFunc(store, newAgg, opts)
	if err != nil {
		return snapshot.Progress{}, err
	}
	return snapshot.Rebuild(ctx, store, typ, fn, ro)
}

// StartRebuild runs RebuildSnapshots in a new goroutine and returns the job,
// which reports progress and can be cancelled and waited for.
func StartRebuild[A Aggregate](ctx context.Context, store Store, newAgg func() A, opts ...Option) (*snapshot.Job, error) {
	fn, typ, ro, err := rebuildFunc(store, newAgg, opts)
	if err != nil {
		return nil, err
	}
	return snapshot.Start(ctx, store, typ, fn, ro), nil
}

func rebuildFunc[A Aggregate](store Store, newAgg func() A, opts []Option) (snapshot.RebuildFunc, string, snapshot.RebuildOptions, error) {
	o := buildOptions(opts)
	probe := newAgg()
	typ := probe.AggregateType()
	rev := o.revisionFor(probe)
	if rev == "" {
		return nil, typ, o.rebuild, fmt.Errorf("aggregator: rebuild snapshots of %s: the aggregate declares no revision (implement Revisioned or use WithRevision)", typ)
	}
	if !snapshot.Decodable(probe) {
		return nil, typ, o.rebuild, fmt.Errorf("aggregator: rebuild snapshots of %s: %T is not a pointer, its state cannot be restored", typ, probe)
	}
	if o.rebuild.Logger == nil {
		o.rebuild.Logger = o.logger
	}
	// Any replayed event makes the load save a snapshot at the head.
	p := o.policyFor(probe)
	p.Every = 1
	o.policy = &p
	o.revision = &rev
	o.strictSave = true
	fn := func(ctx context.Context, id string) error {
		_, err := o.load(ctx, store, id, newAgg(), 0, true)
		return err
	}
	return fn, typ, o.rebuild, nil
}
