package pebble

import (
	"fmt"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// counted reads with the iterator statistics on and returns what f's reads
// touched.
func counted(s *Store, f func()) iterCount {
	c := &iterStats{}
	s.iterStats = c
	defer func() { s.iterStats = nil }()
	f()
	return c.count()
}

// TestFirstPageByTypeKeysFlat pins the flatness of a first page by type
// with a deterministic measure: the Pebble points, seeks and steps of the
// read are the same with 1,000 and 30,000 unrelated events around the
// wanted ones (in the memtable and flushed).
func TestFirstPageByTypeKeysFlat(t *testing.T) {
	q := evento.ByType("bank/Account").First(100, "")
	cost := func(unrelated int, flush bool) iterCount {
		s := setup(t, WithSync(false))
		for i := 0; i < unrelated; i += 1000 {
			evs := make([]evento.Event, 0, 1000)
			for j := i; j < i+1000 && j < unrelated; j++ {
				evs = append(evs, ev("other/Thing", fmt.Sprint("t-", j/100), uint64(j%100+1), "Other", ""))
			}
			mustWrite(t, s, evs...)
			if i+1000 >= unrelated/2 && i < unrelated/2 { // the wanted events sit in the middle of the log
				evs = evs[:0]
				for v := uint64(1); v <= 200; v++ {
					evs = append(evs, ev("bank/Account", "acc-1", v, "Deposited", ""))
				}
				mustWrite(t, s, evs...)
			}
		}
		if flush {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Now()
		st := counted(s, func() {
			p, err := s.Read(t.Context(), q)
			if err != nil || len(p.Events) != 100 {
				t.Fatalf("first page: %d events, %v", len(p.Events), err)
			}
		})
		t.Logf("%d unrelated, flush %v: %+v in %v", unrelated, flush, st, time.Since(t0))
		return st
	}
	for _, flush := range []bool{false, true} {
		small, big := cost(1_000, flush), cost(30_000, flush)
		if small != big {
			t.Errorf("flush %v: first page by type touched %+v with 1,000 unrelated events, %+v with 30,000", flush, small, big)
		}
		// 101 index entries and the 100 events they point at, give or
		// take the iterators' first and last positioning.
		if small.points > 2*101+8 {
			t.Errorf("flush %v: first page of 100 touched %d points", flush, small.points)
		}
	}
}

// TestSnapshotLoadStepsFromSnapshot pins that a load from a snapshot reads
// only the events after it: the snapshot lookup and the read of the
// aggregate from the snapshot's version touch the same Pebble points for
// an aggregate of 20 and of 20,000 events with a snapshot 10 events before
// its head.
func TestSnapshotLoadStepsFromSnapshot(t *testing.T) {
	s := setup(t, WithSync(false))
	ctx := t.Context()
	load := func(id string, n uint64) iterCount {
		for v := uint64(1); v <= n; v += 1000 {
			var evs []evento.Event
			for w := v; w < v+1000 && w <= n; w++ {
				evs = append(evs, ev("bank/Account", id, w, "Deposited", ""))
			}
			mustWrite(t, s, evs...)
		}
		snapV := n - 10
		for _, v := range []uint64{snapV / 2, snapV} { // an older snapshot too
			if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "bank/Account", AggregateID: id, Revision: "r1", Version: v, Data: []byte("state")}); err != nil {
				t.Fatal(err)
			}
		}
		return counted(s, func() {
			sn, err := s.LoadSnapshot(ctx, "bank/Account", "r1", id, 0)
			if err != nil || sn.Version != snapV {
				t.Fatalf("LoadSnapshot: version %d, %v", sn.Version, err)
			}
			// As aggregator.Load does: from the snapshot's own event.
			evs, err := s.ReadAggregate(ctx, "bank/Account", id, sn.Version-1, 0)
			if err != nil || len(evs) != 11 || evs[0].Version != snapV {
				t.Fatalf("ReadAggregate: %d events, %v", len(evs), err)
			}
		})
	}
	short, long := load("short", 20), load("long", 20_000)
	if short != long {
		t.Errorf("load from a snapshot touched %+v for 20 events, %+v for 20,000", short, long)
	}
	if long.points > 11+4 {
		t.Errorf("load of 11 events from a snapshot touched %d points", long.points)
	}
	t.Logf("short %+v, long %+v", short, long)
}
