package aggregator_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/snapshot"
)

// prefixes returns the state after each prefix of data: [v] is the state
// after v events.
func prefixes(id string, data []aggregator.EventData) []counter {
	out := make([]counter, len(data)+1)
	c := newCounter()
	for i, d := range data {
		raw, err := evento.Marshal(d)
		if err != nil {
			panic(err)
		}
		e := evento.Event{AggregateType: counterType, AggregateID: id, Version: uint64(i + 1), Name: d.EventName(), Data: raw}
		if err := c.ApplyEvent(&e); err != nil {
			panic(err)
		}
		out[i+1] = c.state()
	}
	return out
}

func randomEvent(rng *rand.Rand) aggregator.EventData {
	switch rng.IntN(3) {
	case 0:
		return Added{N: rng.Int64N(200) - 100}
	case 1:
		return Multiplied{By: rng.Int64N(5) - 2}
	default:
		return Renamed{Name: string(rune('a' + rng.IntN(26)))}
	}
}

// TestPropertySnapshotsEqualReplay checks, over random histories committed
// in random batches, with snapshots at random versions, that at every
// version: a load from snapshot plus tail equals the full replay; snapshots
// of another revision are ignored; time travel equals the replay of the
// prefix; and a corrupted snapshot falls back to the full replay.
func TestPropertySnapshotsEqualReplay(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(20240611, 7))
		histories := 6
		if testing.Short() {
			histories = 2
		}
		_, quiet := newLog()
		for h := range histories {
			n := 1 + rng.IntN(60)
			data := make([]aggregator.EventData, n)
			for i := range data {
				data[i] = randomEvent(rng)
			}
			// Commit in random batches.
			b := aggregator.Create(counterType)
			var events []evento.Event
			for i := 0; i < n; {
				k := min(n-i, 1+rng.IntN(5))
				if _, err := b.Events(data[i:i+k]...).Commit(ctx, s); err != nil {
					t.Fatal(err)
				}
				events = append(events, b.Committed()...)
				i += k
			}
			id := b.ID()
			want := prefixes(id, data)

			// Snapshots of revision "p" at random versions, taken from
			// full replays; and wrong states under revision "old".
			snapAt := map[uint64]bool{}
			for v := uint64(1); v <= uint64(n); v++ {
				if rng.IntN(4) != 0 {
					continue
				}
				c := newCounter()
				if _, err := aggregator.LoadAt(ctx, s, id, c, v, aggregator.WithoutSnapshots()); err != nil {
					t.Fatal(err)
				}
				if err := aggregator.SaveSnapshot(ctx, s, id, c, v, aggregator.WithRevision("p")); err != nil {
					t.Fatal(err)
				}
				snapAt[v] = true
				if err := aggregator.SaveSnapshot(ctx, s, id, &counter{Sum: -12345}, v, aggregator.WithRevision("old")); err != nil {
					t.Fatal(err)
				}
			}
			for v := uint64(1); v <= uint64(n); v++ {
				base := uint64(0) // newest snapshot at or before v
				for u := v; u >= 1; u-- {
					if snapAt[u] {
						base = u
						break
					}
				}
				c := newCounter()
				got, err := aggregator.LoadAt(ctx, s, id, c, v, aggregator.WithRevision("p"))
				if err != nil || got != v || c.state() != want[v] || c.applied != int(v-base) {
					t.Fatalf("history %d v%d: snapshot+tail = v%d %v, state %+v applied %d; want %+v applied %d",
						h, v, got, err, c.state(), c.applied, want[v], v-base)
				}
				c = newCounter()
				if _, err := aggregator.LoadAt(ctx, s, id, c, v, aggregator.WithRevision("new")); err != nil || c.state() != want[v] || c.applied != int(v) {
					t.Fatalf("history %d v%d: another revision: state %+v applied %d, %v; want a full replay", h, v, c.state(), c.applied, err)
				}
				// Time travel to the event's timestamp: the last version
				// stamped at or before it.
				tv := v
				for tv < uint64(n) && !events[tv].Timestamp.After(events[v-1].Timestamp) {
					tv++
				}
				c = newCounter()
				if got, err := aggregator.LoadAtTime(ctx, s, id, c, events[v-1].Timestamp, aggregator.WithRevision("p")); err != nil || got != tv || c.state() != want[tv] {
					t.Fatalf("history %d: LoadAtTime(ts v%d) = v%d %v; want v%d", h, v, got, err, tv)
				}
			}
			// The current load equals the full replay, and saves a
			// snapshot at the head when due.
			c := newCounter()
			if got, err := aggregator.Load(ctx, s, id, c, aggregator.WithRevision("p"), aggregator.WithPolicy(snapshot.EveryN(1))); err != nil || got != uint64(n) || c.state() != want[n] {
				t.Fatalf("history %d: Load = v%d, %v", h, got, err)
			}
			// Corrupt the newest snapshot: full replay, with a warning.
			if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: counterType, AggregateID: id, Revision: "p",
				Version: uint64(n), Cursor: events[n-1].Cursor(), Data: []byte{0x93, 0xc1}}); err != nil {
				t.Fatal(err)
			}
			c = newCounter()
			if got, err := aggregator.Load(ctx, s, id, c, aggregator.WithRevision("p"), aggregator.WithPolicy(snapshot.OnDemand()), aggregator.WithLogger(quiet)); err != nil || got != uint64(n) || c.state() != want[n] || c.applied != n {
				t.Fatalf("history %d: corrupted snapshot: v%d %v applied %d", h, got, err, c.applied)
			}
		}
	})
}

// TestLoadRacingCommits loads an aggregate while a writer commits to it
// (and loads save snapshots): every load returns a state that is exactly
// the replay of the prefix its version names.
func TestLoadRacingCommits(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(99, 1))
		const n = 120
		data := make([]aggregator.EventData, n)
		for i := range data {
			data[i] = randomEvent(rng)
		}
		b := aggregator.Create(counterType)
		want := prefixes(b.ID(), data)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			for i := 0; i < n; {
				k := min(n-i, 1+i%3)
				if _, err := b.Events(data[i:i+k]...).Commit(ctx, s); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				i += k
			}
		}()
		const readers = 2
		loads := make([]int, readers)
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					c := newCounter()
					v, err := aggregator.Load(ctx, s, b.ID(), c, aggregator.WithPolicy(snapshot.EveryN(7)), aggregator.WithChunk(4))
					if v == 0 && errors.Is(err, evento.ErrNotFound) {
						continue // not created yet
					}
					if err != nil || v > n || c.state() != want[v] {
						t.Errorf("racing load: v%d %v, state %+v; want %+v", v, err, c.state(), want[min(v, n)])
						return
					}
					loads[r]++
				}
			}()
		}
		wg.Wait()
		c := newCounter()
		if v, err := aggregator.Load(ctx, s, b.ID(), c); err != nil || v != n || c.state() != want[n] {
			t.Fatalf("final load v%d %v", v, err)
		}
		t.Logf("loads during commits: %v", loads)
	})
}
