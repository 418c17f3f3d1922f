package aggregator

import (
	"context"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// Applier folds events into a value. Every Aggregate is one; a projection
// (an in-memory read model over any query) need only implement ApplyEvent.
type Applier interface {
	ApplyEvent(e *evento.Event) error
}

// Project folds the events matching q into into, in global order, starting
// after the cursor from ("" for the start), and returns the cursor of the
// last event applied (from itself when there was none). Passing that cursor
// back later resumes the projection with the events committed since.
//
// It pages through store.Read, WithChunk events at a time (at most
// cursor.MaxPageSize); q's own pagination arguments are ignored. If
// ApplyEvent fails, Project returns the cursor of the last event applied
// successfully together with the error, so the caller can resume from
// there.
func Project(ctx context.Context, store evento.EventStore, q evento.Query, into Applier, from string, opts ...Option) (string, error) {
	o := buildOptions(opts)
	n := min(o.chunk, cursor.MaxPageSize)
	cur := from
	for {
		page, err := store.Read(ctx, q.First(n, cur))
		if err != nil {
			return cur, fmt.Errorf("aggregator: project after %q: %w", truncate(cur), err)
		}
		for i := range page.Events {
			e := &page.Events[i]
			if err := into.ApplyEvent(e); err != nil {
				if i > 0 {
					cur = page.Events[i-1].Cursor()
				}
				return cur, fmt.Errorf("aggregator: project %s/%q v%d %s: %w", e.AggregateType, e.AggregateID, e.Version, e.Name, err)
			}
		}
		// One cursor encoding per page: the last event applied.
		if len(page.Events) > 0 {
			cur = page.Events[len(page.Events)-1].Cursor()
		}
		if !page.PageInfo.HasNextPage || len(page.Events) == 0 {
			return cur, nil
		}
	}
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
