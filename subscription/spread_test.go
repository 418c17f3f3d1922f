package subscription

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

func TestFairShare(t *testing.T) {
	for _, c := range []struct{ n, w, want int }{{4, 0, 4}, {4, 1, 4}, {4, 2, 2}, {4, 3, 2}, {4, 4, 1}, {4, 9, 1}, {1, 3, 1}, {7, 2, 4}} {
		if got := FairShare(c.n, c.w); got != c.want {
			t.Errorf("FairShare(%d, %d) = %d, want %d", c.n, c.w, got, c.want)
		}
	}
}

// testSpreadByDefault: 4 partitions, no MaxClaims. A starts alone and holds
// all four; B joins and gets its share (2) within about a lease TTL; C joins
// (share ceil(4/3) = 2: nothing moves); A stops and C takes A's two; B
// stops and C takes everything. Events are written throughout: each is
// handled once, each aggregate's in order, and no partition is ever handled
// by two workers at once.
func testSpreadByDefault(t *testing.T, newExec newExecFunc) {
	const ttl = time.Second
	exec := newExec(t)
	w := newWriter(exec)
	aggs := ids(24, "s")
	w.writeN(t, 48, aggs...)
	rec := newRecorder()
	var inPart [4]atomic.Int32
	var overlap atomic.Bool
	h := func(ctx context.Context, e *evento.Event) error {
		info, _ := InfoFrom(ctx)
		if inPart[info.Partition].Add(1) > 1 {
			overlap.Store(true)
		}
		defer inPart[info.Partition].Add(-1)
		rec.record(ctx, e)
		return nil
	}
	type gain struct {
		worker string
		at     time.Time
	}
	gained := make(chan gain, 64)
	mk := func(id string) *Worker {
		wk, err := New("spread").HandleAll(aggType, h).Partitions(4).ChunkSize(7).Lease(ttl, 0).WorkerID(id).Logger(quiet).
			Signals(&Signals{LeaseGained: func(l evento.Lease) { gained <- gain{l.Holder, time.Now()} }}).Start(context.Background(), exec)
		if err != nil {
			t.Fatal(err)
		}
		return wk
	}
	// waitGains waits for n leases gained by worker and returns when the
	// last one was gained.
	waitGains := func(worker string, n int, what string) time.Time {
		t.Helper()
		var last time.Time
		for n > 0 {
			g := recv(t, gained, 10*ttl, what)
			if g.worker != worker {
				t.Fatalf("%s: lease gained by %s, want %s", what, g.worker, worker)
			}
			last, n = g.at, n-1
		}
		return last
	}
	held := func() map[string]int {
		subs, err := Status(context.Background(), exec, "spread")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, s := range subs {
			if s.Holder != "" {
				m[s.Holder]++
			}
		}
		return m
	}

	a := mk("A")
	waitGains("A", 4, "A taking all four partitions alone")

	// Writes go on through every hand-over.
	stopWrites := make(chan struct{})
	var writes sync.WaitGroup
	writes.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopWrites:
				return
			default:
			}
			w.write(t, aggType, "Deposited", "", aggs[i%len(aggs)], aggs[(i+7)%len(aggs)])
		}
	})

	t0 := time.Now()
	b := mk("B")
	joinB := waitGains("B", 2, "B getting its share after joining").Sub(t0)
	if joinB > 2*ttl {
		t.Errorf("B got its share %v after joining, want within about one lease TTL (%v)", joinB, ttl)
	}
	if m := held(); m["A"] != 2 || m["B"] != 2 {
		t.Errorf("after B joined: holders %v, want A 2 and B 2", m)
	}

	c := mk("C") // share ceil(4/3) = 2: A and B keep theirs
	waitFor(t, 10*ttl, "C's presence", func() bool {
		live, err := exec.AnnounceWorker(context.Background(), "spread", "probe", time.Millisecond)
		return err == nil && len(live) == 4 // A, B, C and the probe
	})
	t1 := time.Now()
	if err := stop(t, a); err != nil {
		t.Fatal(err)
	}
	leaveA := waitGains("C", 2, "C taking A's partitions after A stopped").Sub(t1)
	t2 := time.Now()
	if err := stop(t, b); err != nil {
		t.Fatal(err)
	}
	leaveB := waitGains("C", 2, "C taking B's partitions after B stopped").Sub(t2)
	if leaveA > 2*ttl || leaveB > 2*ttl {
		t.Errorf("hand-overs after a stop took %v and %v, want within about one lease TTL (%v)", leaveA, leaveB, ttl)
	}
	close(stopWrites)
	writes.Wait()
	want := allEvents(t, exec, evento.ByType(aggType))
	rec.waitUnique(t, len(want), 30*time.Second)
	if err := stop(t, c); err != nil {
		t.Fatal(err)
	}
	got, seen := rec.snapshot()
	if len(got) != len(want) || len(seen) != len(want) {
		t.Fatalf("delivered %d (%d distinct), want %d exactly once", len(got), len(seen), len(want))
	}
	next := map[string]uint64{}
	for _, e := range got {
		if e.Version != next[e.AggregateID]+1 {
			t.Fatalf("aggregate %s: version %d handled after %d", e.AggregateID, e.Version, next[e.AggregateID])
		}
		next[e.AggregateID] = e.Version
	}
	if overlap.Load() {
		t.Error("a partition was handled by two workers at once")
	}
	t.Logf("lease TTL %v: joining worker got its share in %v; after a stop the remaining worker took over in %v and %v; %d events, in order, once each",
		ttl, joinB.Round(time.Millisecond), leaveA.Round(time.Millisecond), leaveB.Round(time.Millisecond), len(want))
}
