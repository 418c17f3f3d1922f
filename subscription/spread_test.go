package subscription

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

func TestFairShare(t *testing.T) {
	for _, c := range []struct{ n, w, want int }{{4, 0, 4}, {4, 1, 4}, {4, 2, 2}, {4, 3, 2}, {4, 4, 1}, {4, 9, 1}, {1, 3, 1}, {7, 2, 4}, {5, 2, 3}} {
		if got := FairShare(c.n, c.w); got != c.want {
			t.Errorf("FairShare(%d, %d) = %d, want %d", c.n, c.w, got, c.want)
		}
	}
}

// workerIDs returns n worker ids shaped like the default ones.
func workerIDs(n int, salt string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("host%s-%d-%08x", salt, 1000+i, uint32(i)*2654435761)
	}
	return out
}

// counts returns how many partitions each worker is given, sorted down.
func counts(owners []string) []int {
	m := map[string]int{}
	for _, o := range owners {
		m[o]++
	}
	return slices.Sorted(func(yield func(int) bool) {
		for _, n := range m {
			if !yield(-n) {
				return
			}
		}
	})
}

func moved(a, b []string) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestOwnersBalanced: every worker gets floor or ceil of P/W, exactly
// P mod W get the ceil, whatever the ids, their order or duplicates.
func TestOwnersBalanced(t *testing.T) {
	for _, c := range []struct {
		p    int
		ws   []string
		want []int // partitions per worker, descending
	}{
		{4, []string{"A", "B", "C"}, []int{2, 1, 1}},
		{5, []string{"A", "B"}, []int{3, 2}},
		{4, []string{"A"}, []int{4}},
		{2, []string{"A", "B", "C"}, []int{1, 1}},
		{4, []string{"C", "A", "B", "A", ""}, []int{2, 1, 1}},
	} {
		got := Owners(c.p, c.ws)
		if n := counts(got); !slices.Equal(n, negate(c.want)) {
			t.Errorf("Owners(%d, %q) = %q: counts %v, want %v", c.p, c.ws, got, negate(n), c.want)
		}
	}
	for p := 1; p <= 40; p++ {
		for w := 1; w <= 12; w++ {
			ws := workerIDs(w, fmt.Sprint(p))
			got := Owners(p, ws)
			per := map[string]int{}
			for i, o := range got {
				if o == "" {
					t.Fatalf("Owners(%d, %d workers): partition %d has no owner", p, w, i)
				}
				per[o]++
			}
			ceils := 0
			for _, o := range ws {
				switch per[o] {
				case p / w:
				case p/w + 1:
					ceils++
				default:
					t.Fatalf("Owners(%d, %d workers): %s gets %d, want %d or %d", p, w, o, per[o], p/w, p/w+1)
				}
			}
			if ceils != p%w {
				t.Fatalf("Owners(%d, %d workers): %d workers get the ceil, want %d", p, w, ceils, p%w)
			}
			rev := slices.Clone(ws)
			slices.Reverse(rev)
			if !slices.Equal(Owners(p, rev), got) {
				t.Fatalf("Owners(%d, %d workers) depends on the order of the workers", p, w)
			}
		}
	}
	if got := Owners(3, nil); !slices.Equal(got, []string{"", "", ""}) {
		t.Errorf("Owners(3, nil) = %q, want no owners", got)
	}
}

// TestOwnersStable measures how many partitions change owner when one
// worker joins or leaves, against the least possible (the joiner's or the
// leaver's share) and against the modulo rule (partition p to the worker
// at sorted index p mod W).
func TestOwnersStable(t *testing.T) {
	modulo := func(p int, ws []string) []string {
		ws = slices.Sorted(slices.Values(ws))
		out := make([]string, p)
		for i := range out {
			out[i] = ws[i%len(ws)]
		}
		return out
	}
	for _, p := range []int{4, 5, 8, 16, 64, 256} {
		var hrw, mod, least int
		for trial := range 20 {
			for w := 1; w <= 8; w++ {
				all := workerIDs(w+1, fmt.Sprint(trial))
				j := (trial * 7) % (w + 1) // the one that joins, then leaves
				before := slices.Delete(slices.Clone(all), j, j+1)
				oBefore, oAfter := Owners(p, before), Owners(p, all)
				m := moved(oBefore, oAfter)
				given := 0 // partitions the joiner is given: they must move
				for _, o := range oAfter {
					if o == all[j] {
						given++
					}
				}
				// A join (and, reversed, a leave) may shift a few partitions
				// between the others to keep counts even, never many.
				if limit := 2*given + 2; m > limit {
					t.Errorf("P=%d, %d -> %d workers: %d partitions moved, want at most %d (the joiner got %d)", p, w, w+1, m, limit, given)
				}
				hrw += 2 * m // the join, and the leave back to before
				mod += moved(modulo(p, before), modulo(p, all)) + moved(modulo(p, all), modulo(p, before))
				least += 2 * given
			}
		}
		t.Logf("P=%3d, 1..8 -> 2..9 workers and back, 20 id sets: moved %5d (least possible %5d, modulo rule %5d)", p, hrw, least, mod)
		if hrw > least*3/2 {
			t.Errorf("P=%d: %d moves, more than 1.5 times the least possible %d", p, hrw, least)
		}
	}
}

func negate(s []int) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = -v
	}
	return out
}

// holdings tracks which worker holds which partition from the workers'
// Signals, so tests wait for a spread instead of sleeping.
type holdings struct {
	mu      sync.Mutex
	by      map[uint32]string
	gains   int
	lost    int
	changed chan struct{}
}

func newHoldings() *holdings {
	return &holdings{by: map[uint32]string{}, changed: make(chan struct{}, 1)}
}

func (h *holdings) update(f func()) {
	h.mu.Lock()
	f()
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// signals returns the Signals of worker id, wrapping extra (may be nil).
func (h *holdings) signals(id string, extra *Signals) *Signals {
	s := &Signals{}
	if extra != nil {
		*s = *extra
	}
	gained, released, lost := s.LeaseGained, s.LeaseReleased, s.LeaseLost
	s.LeaseGained = func(l evento.Lease) {
		h.update(func() { h.by[l.Partition] = id; h.gains++ })
		if gained != nil {
			gained(l)
		}
	}
	drop := func(p uint32) {
		if h.by[p] == id {
			delete(h.by, p)
		}
	}
	s.LeaseReleased = func(key string, p uint32) {
		h.update(func() { drop(p) })
		if released != nil {
			released(key, p)
		}
	}
	s.LeaseLost = func(key string, p uint32, err error) {
		h.update(func() { drop(p); h.lost++ })
		if lost != nil {
			lost(key, p, err)
		}
	}
	return s
}

func (h *holdings) snapshot() (by map[uint32]string, gains, lost int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.by), h.gains, h.lost
}

// settle waits until the partitions are held exactly as want says (want[p]
// holds p; "" for none) and returns how long that took.
func (h *holdings) settle(t testing.TB, want []string, within time.Duration, what string) time.Duration {
	t.Helper()
	return h.wait(t, within, fmt.Sprintf("%s (holders %q)", what, want), func(by map[uint32]string) bool {
		for p, o := range want {
			if by[uint32(p)] != o {
				return false
			}
		}
		return true
	})
}

// wait waits, woken by the signals, until cond holds of the holders by
// partition, and returns how long that took.
func (h *holdings) wait(t testing.TB, within time.Duration, what string, cond func(by map[uint32]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		by, _, _ := h.snapshot()
		if cond(by) {
			return time.Since(start)
		}
		select {
		case <-h.changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; holders %v", within, what, by)
		}
	}
}

// heldCounts returns how many partitions each holder holds, sorted down.
func (h *holdings) heldCounts() []int {
	by, _, _ := h.snapshot()
	return negate(counts(slices.Collect(maps.Values(by))))
}

// testSpreadByDefault: 4 partitions, no MaxClaims. A starts alone and holds
// all four; B joins (2 and 2); C joins (2, 1 and 1: every worker holds one
// at least); A stops (B and C, 2 each); B stops (C holds all four). After
// each step the partitions are held exactly as Owners says for the live
// workers, having changed hands no more than that needs (no flapping).
// Events are written throughout: each is handled once, each aggregate's in
// order, and no partition is ever handled by two workers at once.
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
	hold := newHoldings()
	workers := map[string]*Worker{}
	var live []string
	// step starts (or, with stopping, stops) worker id and waits for the
	// spread over the live workers, checking that no more partitions
	// changed hands than the spread needed.
	step := func(id string, stopping bool) time.Duration {
		t.Helper()
		before := Owners(4, live)
		_, gains0, lost0 := hold.snapshot()
		if stopping {
			if err := stop(t, workers[id]); err != nil {
				t.Fatal(err)
			}
			live = slices.DeleteFunc(live, func(s string) bool { return s == id })
		} else {
			wk, err := New("spread").HandleAll(aggType, h).Partitions(4).ChunkSize(7).Lease(ttl, 0).WorkerID(id).Logger(quiet).
				Signals(hold.signals(id, nil)).Start(context.Background(), exec)
			if err != nil {
				t.Fatal(err)
			}
			workers[id], live = wk, append(live, id)
		}
		want := Owners(4, live)
		took := hold.settle(t, want, 10*ttl, fmt.Sprintf("spread over %v", live))
		_, gains, lost := hold.snapshot()
		if need := moved(before, want); gains-gains0 > need+lost-lost0 {
			t.Errorf("spread over %v: %d leases gained, want %d (%d lost meanwhile): partitions flapped", live, gains-gains0, need, lost-lost0)
		}
		return took
	}

	step("A", false)
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
	joinB := step("B", false)
	if got := hold.heldCounts(); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("A and B hold %v partitions, want 2 and 2", got)
	}
	joinC := step("C", false)
	if got := hold.heldCounts(); !slices.Equal(got, []int{2, 1, 1}) {
		t.Errorf("A, B and C hold %v partitions, want 2, 1 and 1", got)
	}
	leaveA := step("A", true)
	if got := hold.heldCounts(); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("B and C hold %v partitions, want 2 and 2", got)
	}
	leaveB := step("B", true)
	if joinB > 2*ttl || joinC > 2*ttl || leaveA > 2*ttl || leaveB > 2*ttl {
		t.Errorf("spreads took %v, %v (joins), %v and %v (stops); want each within about one lease TTL (%v)", joinB, joinC, leaveA, leaveB, ttl)
	}
	close(stopWrites)
	writes.Wait()
	want := allEvents(t, exec, evento.ByType(aggType))
	rec.waitUnique(t, len(want), 30*time.Second)
	if err := stop(t, workers["C"]); err != nil {
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
	t.Logf("lease TTL %v (claim interval %v): a joining worker had its share in %v (B) and %v (C); after a stop the rest took over in %v and %v; %d events, in order, once each",
		ttl, ttl/4, joinB.Round(time.Millisecond), joinC.Round(time.Millisecond), leaveA.Round(time.Millisecond), leaveB.Round(time.Millisecond), len(want))
}
