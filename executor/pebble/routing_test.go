package pebble

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// routedCount counts the events Read finds under routing r.
func routedCount(t *testing.T, s *Store, r evento.Routing) int {
	t.Helper()
	p, err := s.Read(t.Context(), evento.ByType("R").WithRouting(r))
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Events)
}

// TestRoutingKeyFixedByFirstEvent checks the rule against the stored key,
// from the version cache, from the database (cache off) and after a
// reopen: a different key is refused with nothing written, no key
// inherits the stored one (in the events returned, the stored events and
// the routing indexes).
func TestRoutingKeyFixedByFirstEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"Cached", 1 << 10}, {"Uncached", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			ctx := t.Context()
			open := func() *Store {
				s, err := Open(ctx, "db", WithVersionCacheSize(tc.cache), WithPebbleOptions(&pdb.Options{FS: fs}))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			mustWrite(t, s, ev("R", "keyed", 1, "Created", "k1"), ev("R", "plain", 1, "Created", ""))
			for _, reopen := range []bool{false, true} {
				if reopen {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = open()
				}
				head, _ := s.Head(ctx)
				kv, _ := s.AggregateVersion(ctx, "R", "keyed")
				pv, _ := s.AggregateVersion(ctx, "R", "plain")
				for _, bad := range [][]evento.Event{
					{ev("R", "keyed", kv+1, "Renamed", "k2")},
					{ev("R", "plain", pv+1, "Renamed", "k2")},
					// One refused span fails the whole batch.
					{ev("R", "other", 1, "Created", ""), ev("R", "keyed", kv+1, "Renamed", "k2")},
				} {
					err := s.Write(ctx, bad)
					var rke *evento.RoutingKeyError
					if !errors.Is(err, evento.ErrRoutingKey) || !errors.As(err, &rke) {
						t.Fatalf("Write %+v = %v, want a *RoutingKeyError", bad, err)
					}
					last := bad[len(bad)-1]
					if rke.AggregateID != last.AggregateID || rke.Version != last.Version || rke.Given != "k2" {
						t.Errorf("RoutingKeyError %+v does not name %s v%d", rke, last.AggregateID, last.Version)
					}
					if h, _ := s.Head(ctx); h != head {
						t.Fatalf("refused write moved the head %v -> %v", head, h)
					}
				}
				if v, _ := s.AggregateVersion(ctx, "R", "other"); v != 0 {
					t.Fatalf("refused batch created an aggregate (version %d)", v)
				}
				// Events that give no key, or the same key, are written with
				// the stored key.
				in := mustWrite(t, s, ev("R", "keyed", kv+1, "Renamed", ""), ev("R", "keyed", kv+2, "Renamed", "k1"), ev("R", "plain", pv+1, "Renamed", ""))
				for i, want := range []string{"k1", "k1", ""} {
					if in[i].RoutingKey != want {
						t.Errorf("written event %d has routing key %q, want %q", i, in[i].RoutingKey, want)
					}
				}
				evs, err := s.ReadAggregate(ctx, "R", "keyed", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					if e.RoutingKey != "k1" {
						t.Errorf("stored keyed v%d has routing key %q", e.Version, e.RoutingKey)
					}
				}
			}
			if got, want := routedCount(t, s, evento.RoutingKey("k1")), 5; got != want {
				t.Errorf("Read under k1 = %d events, want %d", got, want)
			}
			if got, want := routedCount(t, s, evento.NoRoutingKey()), 3; got != want {
				t.Errorf("Read under no key = %d events, want %d", got, want)
			}
			if got := routedCount(t, s, evento.RoutingKey("k2")); got != 0 {
				t.Errorf("Read under k2 = %d events, want none", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRoutingKeyPendingInGroup checks the committer's view of a group's
// pending aggregates: on the committer goroutine, after a group committed
// and before anything else, a write checked against the group's pending
// state sees the key the group gave its new aggregate.
func TestRoutingKeyPendingInGroup(t *testing.T) {
	s := setup(t)
	type result struct {
		bad, inherit []string
		badErr, err  error
	}
	var res *result
	check := func(events ...evento.Event) ([]string, error) {
		spans, err := storekit.ValidateBatch(events)
		if err != nil {
			return nil, err
		}
		keys, err := s.checkSpans(&writeReq{events: events, spans: spans}, s.pending)
		return append([]string(nil), keys...), err
	}
	s.testHookCommitted = func() { // on the committer goroutine
		if res != nil {
			return
		}
		clear(s.versions) // only the group's pending state knows "new"
		res = &result{}
		res.bad, res.badErr = check(ev("R", "new", 2, "Renamed", "k2"))
		res.inherit, res.err = check(ev("R", "new", 2, "Renamed", ""))
	}
	mustWrite(t, s, ev("R", "new", 1, "Created", "k1"))
	if res == nil {
		t.Fatal("hook did not run")
	}
	if !errors.Is(res.badErr, evento.ErrRoutingKey) {
		t.Errorf("check against pending with another key = %v, %v; want ErrRoutingKey", res.bad, res.badErr)
	}
	if res.err != nil || len(res.inherit) != 1 || res.inherit[0] != "k1" {
		t.Errorf("check against pending with no key = %v, %v; want [k1]", res.inherit, res.err)
	}
}

// TestRoutingKeyRace races writers on shared aggregates, each giving its
// own key or none: whichever first event lands fixes the key, every later
// event carries it, and each refused write fails with a version conflict
// or a routing key error.
func TestRoutingKeyRace(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	const (
		aggs    = 4
		writers = 16
		tries   = 60
	)
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rk := ""
			if w%4 != 0 {
				rk = fmt.Sprintf("k%d", w%4)
			}
			for i := range tries {
				id := fmt.Sprint((w + i) % aggs)
				v, err := s.AggregateVersion(ctx, "R", id)
				if err != nil {
					errc <- err
					return
				}
				err = s.Write(ctx, []evento.Event{ev("R", id, v+1, "Tick", rk), ev("R", id, v+2, "Tick", "")})
				if err != nil && !errors.Is(err, evento.ErrVersionConflict) && !errors.Is(err, evento.ErrRoutingKey) {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for a := range aggs {
		evs, err := s.ReadAggregate(ctx, "R", fmt.Sprint(a), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Fatalf("aggregate %d has no events", a)
		}
		for _, e := range evs {
			if e.RoutingKey != evs[0].RoutingKey {
				t.Fatalf("aggregate %d v%d has routing key %q, first event %q", a, e.Version, e.RoutingKey, evs[0].RoutingKey)
			}
		}
	}
}

// BenchmarkStoredRoutingKey measures what reading the routing key costs on
// a version-cache miss: currentState (last event for the version, first
// event for the key, one iterator) against the version alone (last event,
// as before the rule), for an aggregate of 100 events in a flushed table.
func BenchmarkStoredRoutingKey(b *testing.B) {
	s, err := OpenMemory(context.Background(), WithVersionCacheSize(0))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for v := uint64(1); v <= 100; v++ {
		if err := s.Write(context.Background(), []evento.Event{ev("R", "a", v, "Tick", "rk")}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	ref := evento.AggregateRef{Type: "R", ID: "a"}
	b.Run("VersionOnly", func(b *testing.B) {
		for b.Loop() {
			if v, err := s.durableVersion(ref.Type, ref.ID, ^uint64(0)); err != nil || v != 100 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("VersionAndKey", func(b *testing.B) {
		for b.Loop() {
			if st, err := s.currentState(ref); err != nil || st.version != 100 || st.routing != "rk" {
				b.Fatal(st, err)
			}
		}
	})
}
