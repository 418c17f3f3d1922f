package sqlite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/evento-go/evento"
)

// TestInsertRows: a batch is cut into INSERTs of powers of two up to
// maxInsertRows rows, which cover it exactly.
func TestInsertRows(t *testing.T) {
	for n := 1; n <= 300; n++ {
		stmts, done := 0, 0
		for done < n {
			k := insertRows(n - done)
			if k < 1 || k > maxInsertRows || k&(k-1) != 0 || k > n-done || insertSQL(k) == "" {
				t.Fatalf("n=%d: %d rows with %d left", n, k, n-done)
			}
			done += k
			stmts++
		}
		if max := n/maxInsertRows + 7; stmts > max {
			t.Errorf("n=%d: %d statements", n, stmts)
		}
	}
}

// TestMultiRowWrite writes batches of every size around the INSERT sizes
// over several aggregates and checks that the positions Write reports are
// contiguous, follow the stored log, and match what ReadAggregate returns.
func TestMultiRowWrite(t *testing.T) {
	s, _ := setup(t, WithSynchronous("off"))
	ctx := t.Context()
	versions := map[string]uint64{}
	var want []evento.Event
	for _, n := range []int{1, 2, 3, 63, 64, 65, 100, 129, 200} {
		var batch []evento.Event
		for i := range n {
			id := fmt.Sprint("a", i%3)
			versions[id]++
			batch = append(batch, evento.Event{AggregateType: "M", AggregateID: id, Version: versions[id], Name: "Put",
				Data: []byte(fmt.Sprint(n, "/", i)), Metadata: evento.Metadata{CorrelationID: fmt.Sprint("c", i)}})
		}
		mustWrite(t, s, batch...)
		for i := 1; i < len(batch); i++ {
			if batch[i].Position.Seq != batch[i-1].Position.Seq+1 || batch[i].ID.Compare(batch[i-1].ID) <= 0 {
				t.Fatalf("batch of %d: event %d at %v (%s) after %v (%s)", n, i, batch[i].Position, batch[i].ID, batch[i-1].Position, batch[i-1].ID)
			}
		}
		if len(want) > 0 && batch[0].Position.Seq != want[len(want)-1].Position.Seq+1 {
			t.Fatalf("batch of %d starts at %v after %v", n, batch[0].Position, want[len(want)-1].Position)
		}
		want = append(want, batch...)
	}
	got := map[string][]evento.Event{}
	for id := range versions {
		evs, err := s.ReadAggregate(ctx, "M", id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got[id] = evs
	}
	for _, w := range want {
		g := got[w.AggregateID][w.Version-1]
		if g.Position != w.Position || g.ID != w.ID || string(g.Data) != string(w.Data) || g.Metadata.CorrelationID != w.Metadata.CorrelationID || !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("stored %+v, Write reported %+v", g, w)
		}
	}
	// A conflict on the second aggregate of a batch fails the whole batch.
	before, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, []evento.Event{
		{AggregateType: "M", AggregateID: "a0", Version: versions["a0"] + 1, Name: "Put"},
		{AggregateType: "M", AggregateID: "a1", Version: versions["a1"], Name: "Put"},
	})
	var conflict *evento.VersionConflictError
	if !errors.As(err, &conflict) || conflict.AggregateID != "a1" || conflict.Actual != versions["a1"] {
		t.Fatalf("conflicting batch: %v", err)
	}
	if after, err := s.Head(ctx); err != nil || after != before {
		t.Fatalf("head moved from %v to %v (%v) after a failed batch", before, after, err)
	}
}
