package aggregator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

// totals is an in-memory read model: the sum of Added per aggregate.
type totals struct {
	sums   map[string]int64
	events int
	failAt int // fail on this event count (0: never)
}

func (p *totals) ApplyEvent(e *evento.Event) error {
	if p.failAt != 0 && p.events+1 == p.failAt {
		return errRefused
	}
	if e.Name == "Added" {
		var d Added
		if err := e.Decode(&d); err != nil {
			return err
		}
		if p.sums == nil {
			p.sums = map[string]int64{}
		}
		p.sums[e.AggregateID] += d.N
	}
	p.events++
	return nil
}

func TestProjectResumes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		a := aggregator.Create(counterType).Events(Added{N: 1}, Added{N: 2}, Renamed{Name: "a"})
		b := aggregator.Create(counterType).Events(Added{N: 10})
		other := aggregator.Append("test/Other", "o", 0).Events(foreign{}, foreign{})
		if err := aggregator.CommitAll(ctx, s, a, other, b); err != nil {
			t.Fatal(err)
		}
		var p totals
		cur, err := aggregator.Project(ctx, s, evento.ByType(counterType), &p, "", aggregator.WithChunk(2))
		if err != nil || p.events != 4 || p.sums[a.ID()] != 3 || p.sums[b.ID()] != 10 || cur == "" {
			t.Fatalf("Project = %q, %v, %+v", cur, err, p)
		}
		// Nothing new: same cursor, nothing applied.
		again, err := aggregator.Project(ctx, s, evento.ByType(counterType), &p, cur)
		if err != nil || again != cur || p.events != 4 {
			t.Fatalf("Project with nothing new = %q, %v, %d events", again, err, p.events)
		}
		// Resume with the events committed since.
		if _, err := a.Events(Added{N: 100}, Added{N: 200}).Commit(ctx, s); err != nil {
			t.Fatal(err)
		}
		cur2, err := aggregator.Project(ctx, s, evento.ByType(counterType), &p, cur, aggregator.WithChunk(1))
		if err != nil || p.events != 6 || p.sums[a.ID()] != 303 || cur2 == cur {
			t.Fatalf("resumed Project = %v, %+v", err, p)
		}
		// A failing apply returns the cursor of the last event applied.
		f := totals{failAt: 3}
		failCur, err := aggregator.Project(ctx, s, evento.ByType(counterType), &f, "", aggregator.WithChunk(2))
		if !errors.Is(err, errRefused) || f.events != 2 {
			t.Fatalf("failing Project = %v after %d events", err, f.events)
		}
		f.failAt = 0
		if _, err := aggregator.Project(ctx, s, evento.ByType(counterType), &f, failCur); err != nil || f.events != 6 || f.sums[a.ID()] != 303 {
			t.Fatalf("Project resumed after a failure = %v, %+v", err, f)
		}
	})
}
