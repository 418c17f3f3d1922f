package aggregator_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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
		keepAll := aggregator.WithPolicy(snapshot.Policy{Keep: snapshot.KeepAll})
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
			// full replays; and wrong states under revision "old". All
			// are kept (KeepAll), so that each version has its own base.
			snapAt := map[uint64]bool{}
			for v := uint64(1); v <= uint64(n); v++ {
				if rng.IntN(4) != 0 {
					continue
				}
				c := newCounter()
				if _, err := aggregator.LoadAt(ctx, s, id, c, v, aggregator.WithoutSnapshots()); err != nil {
					t.Fatal(err)
				}
				if err := aggregator.SaveSnapshot(ctx, s, id, c, v, aggregator.WithRevision("p"), keepAll); err != nil {
					t.Fatal(err)
				}
				snapAt[v] = true
				if err := aggregator.SaveSnapshot(ctx, s, id, &counter{Sum: -12345}, v, aggregator.WithRevision("old"), keepAll); err != nil {
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
			// snapshot at the head when due (a snapshot is not already
			// there) and asked to; that save prunes to DefaultKeep and
			// drops revision "old".
			c := newCounter()
			info, err := aggregator.LoadWithInfo(ctx, s, id, c, aggregator.WithRevision("p"), aggregator.WithPolicy(snapshot.EveryN(1)), aggregator.WithSnapshotOnLoad())
			if err != nil || info.Version != uint64(n) || c.state() != want[n] || info.SnapshotSaved == snapAt[uint64(n)] {
				t.Fatalf("history %d: Load = %+v, %v; snapshot at the head before: %v", h, info, err, snapAt[uint64(n)])
			}
			if info.SnapshotSaved {
				if vs := storedVersions(t, s, counterType, "p", id); len(vs) > snapshot.DefaultKeep || vs[0] != uint64(n) {
					t.Fatalf("history %d: after a save, revision p keeps %v; want at most %d ending at v%d", h, vs, snapshot.DefaultKeep, n)
				}
				if vs := storedVersions(t, s, counterType, "old", id); len(vs) != 0 {
					t.Fatalf("history %d: after a save, revision old keeps %v", h, vs)
				}
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
// (and loads save snapshots, WithSnapshotOnLoad): every load returns a state that is exactly
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
					v, err := aggregator.Load(ctx, s, b.ID(), c, aggregator.WithPolicy(snapshot.EveryN(7)), aggregator.WithChunk(4), aggregator.WithSnapshotOnLoad())
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

// storedVersions lists the versions of the snapshots stored for
// (typ, rev, id), newest first, walking LoadSnapshot downwards.
func storedVersions(t *testing.T, s aggregator.Store, typ, rev, id string) []uint64 {
	t.Helper()
	var out []uint64
	bound := uint64(0)
	for {
		snap, err := s.LoadSnapshot(context.Background(), typ, rev, id, bound)
		if errors.Is(err, evento.ErrNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("LoadSnapshot(%s, %s, %s, %d): %v", typ, rev, id, bound, err)
		}
		out = append(out, snap.Version)
		if snap.Version <= 1 {
			return out
		}
		bound = snap.Version - 1
	}
}

// propKind is an aggregate type the fold property runs over.
type propKind struct {
	name    string
	typ     string
	fresh   func() aggregator.Aggregate
	event   func(rng *rand.Rand) aggregator.EventData
	state   func(aggregator.Aggregate) any // the state without bookkeeping
	applied func(aggregator.Aggregate) int // ApplyEvent calls on the value
}

var propKinds = []propKind{
	{
		name: "counter", typ: counterType,
		fresh:   func() aggregator.Aggregate { return newCounter() },
		event:   randomEvent,
		state:   func(a aggregator.Aggregate) any { return a.(*counter).state() },
		applied: func(a aggregator.Aggregate) int { return a.(*counter).applied },
	},
	{
		name: "ledger", typ: ledgerType,
		fresh:   func() aggregator.Aggregate { return newLedger() },
		event:   randomLedgerEvent,
		state:   func(a aggregator.Aggregate) any { return a.(*ledger).state() },
		applied: func(a aggregator.Aggregate) int { return a.(*ledger).applied },
	},
}

// fold is the pure in-memory model of a load: data applied in order to a
// fresh value, with no store and no snapshot.
func (k propKind) fold(id string, data []aggregator.EventData) any {
	a := k.fresh()
	for i, d := range data {
		raw, err := evento.Marshal(d)
		if err != nil {
			panic(err)
		}
		e := evento.Event{AggregateType: k.typ, AggregateID: id, Version: uint64(i + 1), Name: d.EventName(), Data: raw}
		if err := a.ApplyEvent(&e); err != nil {
			panic(err)
		}
	}
	return k.state(a)
}

// snapModel is the model of an aggregate's stored snapshots: versions per
// revision.
type snapModel map[string][]uint64

// newest returns the newest version of rev at or below max (0: no bound),
// or 0.
func (m snapModel) newest(rev string, max uint64) uint64 {
	best := uint64(0)
	for _, v := range m[rev] {
		if (max == 0 || v <= max) && v > best {
			best = v
		}
	}
	return best
}

// save records a save of rev at v followed by the prune of policy p.
func (m snapModel) save(rev string, v uint64, p snapshot.Policy) {
	vs := m[rev]
	if !slices.Contains(vs, v) {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	slices.Reverse(vs)
	if keep := p.Limit(); keep > 0 {
		for r := range m {
			if r != rev {
				delete(m, r)
			}
		}
		vs = vs[:min(len(vs), keep)]
	}
	m[rev] = vs
}

// TestPropertyLoadEqualsFold drives every test aggregate type, on every
// backend, through random histories: commits by Handle (saving snapshots
// on the command path under random policies) and by bare builders,
// snapshots saved on demand at random versions, loads that save
// (WithSnapshotOnLoad), and revision changes. It keeps a model of which
// snapshots must exist, and after every step checks that:
//
//   - a plain load's state is reflect.DeepEqual to the in-memory fold of
//     the history, starts from the newest snapshot of the current revision
//     the model holds, replays exactly the events after it (LoadInfo and
//     the ApplyEvent count agree), and writes nothing;
//   - the stored snapshots of both revisions are exactly the model's (saves
//     where the policy says, prunes to Keep, other revisions dropped);
//   - LoadAt at a random version equals the fold of that prefix.
func TestPropertyLoadEqualsFold(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		histories, steps := 3, 40
		if testing.Short() {
			histories, steps = 1, 25
		}
		policies := []snapshot.Policy{
			snapshot.OnDemand(), snapshot.EveryN(1), snapshot.EveryN(3), snapshot.EveryN(7),
			{Every: 2, Keep: 1}, {Every: 4, Keep: 3}, {Every: 3, Keep: snapshot.KeepAll}, snapshot.DefaultPolicy,
		}
		revs := []string{"a", "b"}
		for _, k := range propKinds {
			t.Run(k.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(20260311, uint64(len(k.name))))
				for h := range histories {
					id := fmt.Sprintf("%s-%d", k.name, h)
					var data []aggregator.EventData
					model := snapModel{}
					rev := revs[0]
					policy := policies[rng.IntN(len(policies))]
					opts := func(extra ...aggregator.Option) []aggregator.Option {
						return append([]aggregator.Option{aggregator.WithRevision(rev), aggregator.WithPolicy(policy),
							aggregator.WithChunk([]int{2, 5, aggregator.DefaultChunk}[rng.IntN(3)])}, extra...)
					}
					fail := func(step int, what string, args ...any) {
						t.Helper()
						t.Fatalf("history %d step %d (v%d, rev %s, policy %+v): %s", h, step, len(data), rev, policy, fmt.Sprintf(what, args...))
					}
					for step := range steps {
						n := uint64(len(data))
						switch a := rng.IntN(10); {
						case a < 4: // a command
							onLoad := n > 0 && rng.IntN(4) == 0
							evs := make([]aggregator.EventData, 1+rng.IntN(4))
							for i := range evs {
								evs[i] = k.event(rng)
							}
							o := opts()
							if onLoad {
								o = append(o, aggregator.WithSnapshotOnLoad())
							}
							res, err := aggregator.Handle(ctx, s, id, k.fresh, func(aggregator.Aggregate) ([]aggregator.EventData, error) { return evs, nil }, o...)
							if err != nil {
								fail(step, "Handle: %v", err)
							}
							base := model.newest(rev, 0)
							since := int(n-base) + len(evs)
							loadSaved := onLoad && policy.Due(int(n-base))
							if loadSaved {
								model.save(rev, n, policy)
								since = len(evs)
							}
							wantLoad := aggregator.LoadInfo{Version: n, FromSnapshot: base > 0, SnapshotVersion: base, Replayed: int(n - base), SnapshotSaved: loadSaved}
							if res.Load != wantLoad {
								fail(step, "Handle's load %+v; want %+v", res.Load, wantLoad)
							}
							data = append(data, evs...)
							if want := policy.Due(since); res.SnapshotSaved != want {
								fail(step, "Handle saved a snapshot: %v; want %v (%d applied since the last)", res.SnapshotSaved, want, since)
							}
							if res.SnapshotSaved {
								model.save(rev, uint64(len(data)), policy)
							}
							if res.Version != uint64(len(data)) || !reflect.DeepEqual(k.state(res.State), k.fold(id, data)) {
								fail(step, "Handle result v%d, state %+v; want v%d %+v", res.Version, k.state(res.State), len(data), k.fold(id, data))
							}
						case a < 6: // a bare commit: never a snapshot
							evs := make([]aggregator.EventData, 1+rng.IntN(6))
							for i := range evs {
								evs[i] = k.event(rng)
							}
							if _, err := aggregator.Append(k.typ, id, n).Events(evs...).Commit(ctx, s); err != nil {
								fail(step, "commit: %v", err)
							}
							data = append(data, evs...)
						case a < 7: // a new revision, or a new policy
							if rng.IntN(2) == 0 {
								rev = revs[1-slices.Index(revs, rev)]
							} else {
								policy = policies[rng.IntN(len(policies))]
							}
						case a < 8 && n > 0: // on demand, at a random version
							v := 1 + rng.Uint64N(n)
							full := k.fresh()
							if _, err := aggregator.LoadAt(ctx, s, id, full, v, aggregator.WithoutSnapshots()); err != nil {
								fail(step, "LoadAt(v%d) without snapshots: %v", v, err)
							}
							if err := aggregator.SaveSnapshot(ctx, s, id, full, v, opts()...); err != nil {
								fail(step, "SaveSnapshot(v%d): %v", v, err)
							}
							model.save(rev, v, policy)
						case n > 0: // a load asked to save
							a := k.fresh()
							info, err := aggregator.LoadWithInfo(ctx, s, id, a, opts(aggregator.WithSnapshotOnLoad())...)
							base := model.newest(rev, 0)
							want := aggregator.LoadInfo{Version: n, FromSnapshot: base > 0, SnapshotVersion: base, Replayed: int(n - base), SnapshotSaved: policy.Due(int(n - base))}
							if err != nil || info != want {
								fail(step, "LoadWithInfo(WithSnapshotOnLoad) = %+v, %v; want %+v", info, err, want)
							}
							if want.SnapshotSaved {
								model.save(rev, n, policy)
							}
						}

						// The checks, after every step.
						n = uint64(len(data))
						if n == 0 {
							continue
						}
						for _, r := range revs {
							if got := storedVersions(t, s, k.typ, r, id); !slices.Equal(got, model[r]) {
								fail(step, "stored snapshots of revision %s: %v; want %v", r, got, model[r])
							}
						}
						wantState := k.fold(id, data)
						a := k.fresh()
						info, err := aggregator.LoadWithInfo(ctx, s, id, a, opts()...)
						base := model.newest(rev, 0)
						want := aggregator.LoadInfo{Version: n, FromSnapshot: base > 0, SnapshotVersion: base, Replayed: int(n - base)}
						if err != nil || info != want || k.applied(a) != info.Replayed {
							fail(step, "LoadWithInfo = %+v, %v, %d applied; want %+v", info, err, k.applied(a), want)
						}
						if got := k.state(a); !reflect.DeepEqual(got, wantState) {
							fail(step, "loaded state (from snapshot v%d)\n%+v\nwant the fold\n%+v", base, got, wantState)
						}
						for _, r := range revs { // the plain load wrote nothing
							if got := storedVersions(t, s, k.typ, r, id); !slices.Equal(got, model[r]) {
								fail(step, "a plain load changed the snapshots of revision %s: %v; want %v", r, got, model[r])
							}
						}
						v := 1 + rng.Uint64N(n)
						a = k.fresh()
						if got, err := aggregator.LoadAt(ctx, s, id, a, v, opts()...); err != nil || got != v ||
							k.applied(a) != int(v-model.newest(rev, v)) || !reflect.DeepEqual(k.state(a), k.fold(id, data[:v])) {
							fail(step, "LoadAt(v%d) = v%d, %v, %d applied; want the fold of the prefix from snapshot v%d", v, got, err, k.applied(a), model.newest(rev, v))
						}
					}
				}
			})
		}
	})
}
