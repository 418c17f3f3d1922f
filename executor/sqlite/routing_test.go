package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evento-go/evento"
)

func rkEvent(typ, id string, v uint64, key string) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: "Happened", RoutingKey: key}
}

// wantRoutingErr fails unless err is a *RoutingKeyError for typ/id with
// the given and fixed keys.
func wantRoutingErr(t *testing.T, err error, typ, id, given, fixed string) {
	t.Helper()
	var re *evento.RoutingKeyError
	if !errors.Is(err, evento.ErrRoutingKey) || !errors.As(err, &re) {
		t.Fatalf("Write = %v, want a *RoutingKeyError", err)
	}
	if re.AggregateType != typ || re.AggregateID != id || re.Given != given || re.Fixed != fixed {
		t.Fatalf("RoutingKeyError %+v, want %s/%s given %q fixed %q", re, typ, id, given, fixed)
	}
	if !strings.HasPrefix(err.Error(), "sqlite executor: write: ") {
		t.Fatalf("error %q is not wrapped by the executor", err)
	}
}

// storedKeys returns the routing keys of an aggregate's stored events.
func storedKeys(t *testing.T, s *Store, typ, id string) []string {
	t.Helper()
	es, err := s.ReadAggregate(t.Context(), typ, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.RoutingKey
	}
	return out
}

// TestRoutingKeyFixedByFirstEvent: later events inherit the first event's
// key, the same key is accepted, a different one (or one given to an
// aggregate created without a key) is refused, and a refused batch writes
// nothing, not even its other aggregates.
func TestRoutingKeyFixedByFirstEvent(t *testing.T) {
	s, path := setup(t)
	ctx := t.Context()
	mustWrite(t, s, rkEvent("R", "keyed", 1, "k"), rkEvent("R", "plain", 1, ""))

	// Inherited when not given, in the same Write and later ones.
	got := mustWrite(t, s, rkEvent("R", "keyed", 2, ""), rkEvent("R", "keyed", 3, "k"))
	if got[0].RoutingKey != "k" || got[1].RoutingKey != "k" {
		t.Fatalf("written keys %q %q, want k k", got[0].RoutingKey, got[1].RoutingKey)
	}
	if keys := storedKeys(t, s, "R", "keyed"); fmt.Sprint(keys) != "[k k k]" {
		t.Fatalf("stored keys %q, want k k k", keys)
	}

	// A different key is refused, with the whole batch.
	before, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, []evento.Event{rkEvent("R", "new", 1, ""), rkEvent("R", "keyed", 4, "other")})
	wantRoutingErr(t, err, "R", "keyed", "other", "k")
	// A key given to an aggregate created without one is refused too.
	err = s.Write(ctx, []evento.Event{rkEvent("R", "plain", 2, "late")})
	wantRoutingErr(t, err, "R", "plain", "late", "")
	after, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("head moved from %v to %v after refused writes", before, after)
	}
	if v, _ := s.AggregateVersion(ctx, "R", "new"); v != 0 {
		t.Fatalf("R/new at version %d after a refused batch, want 0", v)
	}

	// A version conflict is reported first when both are wrong.
	err = s.Write(ctx, []evento.Event{rkEvent("R", "keyed", 9, "other")})
	if !errors.Is(err, evento.ErrVersionConflict) {
		t.Fatalf("Write with a stale version and another key = %v, want a version conflict", err)
	}

	// The rule holds for another Store on the file (it reads the stored
	// key, it does not remember it), and after reopening.
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	wantRoutingErr(t, s2.Write(ctx, []evento.Event{rkEvent("R", "keyed", 4, "x")}), "R", "keyed", "x", "k")
	got = mustWrite(t, s2, rkEvent("R", "keyed", 4, ""), rkEvent("R", "plain", 2, ""))
	if got[0].RoutingKey != "k" || got[1].RoutingKey != "" {
		t.Fatalf("written keys %q %q, want k and none", got[0].RoutingKey, got[1].RoutingKey)
	}
	// The routed query sees the inherited events.
	p, err := s.Read(ctx, evento.ByAggregate("R", "keyed").WithRouting(evento.RoutingKey("k")).First(10, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 4 {
		t.Fatalf("routed read found %d events of R/keyed, want 4", len(p.Events))
	}
}

// TestRoutingKeyRacingWriters: writers on two Stores race to create one
// aggregate, each with its own key, then each tries to append with its own
// key. Exactly one key wins, and every stored event carries it.
func TestRoutingKeyRacingWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const writers = 8
	var wg sync.WaitGroup
	created := make([]bool, writers)
	appended := make([]int, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			key := fmt.Sprint("key", w)
			err := s.Write(t.Context(), []evento.Event{rkEvent("Race", "one", 1, key)})
			created[w] = err == nil
			if err != nil && !errors.Is(err, evento.ErrVersionConflict) {
				errs[w] = err
				return
			}
			for range 5 {
				v, err := s.AggregateVersion(t.Context(), "Race", "one")
				if err != nil {
					errs[w] = err
					return
				}
				err = s.Write(t.Context(), []evento.Event{rkEvent("Race", "one", v+1, key)})
				switch {
				case err == nil:
					appended[w]++
				case errors.Is(err, evento.ErrVersionConflict), errors.Is(err, evento.ErrRoutingKey):
				default:
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	winner := -1
	for w := range writers {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		if created[w] {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both created the aggregate", winner, w)
			}
			winner = w
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the aggregate")
	}
	for w := range writers {
		if w != winner && appended[w] > 0 {
			t.Fatalf("writer %d appended %d events with key%d to an aggregate created with key%d", w, appended[w], w, winner)
		}
	}
	keys := storedKeys(t, stores[0], "Race", "one")
	if len(keys) != 1+appended[winner] {
		t.Fatalf("%d events stored, want %d", len(keys), 1+appended[winner])
	}
	for i, k := range keys {
		if k != fmt.Sprint("key", winner) {
			t.Fatalf("event v%d has key %q, want key%d", i+1, k, winner)
		}
	}
}

// TestRoutingKeyCheckIsASeek: the version and routing-key read of Write
// seeks the unique (aggregate_type, aggregate_id, version) index twice.
func TestRoutingKeyCheckIsASeek(t *testing.T) {
	s, _ := setup(t)
	for i := range 20 {
		mustWrite(t, s, rkEvent("S", fmt.Sprint("a", i%4), uint64(i/4+1), fmt.Sprint("k", i%4)))
	}
	args := []any{blob("S"), blob("a1")}
	checkPlan(t, s, sqlAggVersionRouting, args)
	plan := explain(t, s, sqlAggVersionRouting, args)
	seeks := 0
	for _, l := range plan {
		if strings.Contains(l, "sqlite_autoindex_events_1") && strings.HasPrefix(l, "SEARCH") {
			seeks++
		}
	}
	if seeks != 2 || !strings.Contains(strings.Join(plan, "\n"), "version=?") {
		t.Fatalf("plan does not seek the unique index for the version and the first event:\n%s", strings.Join(plan, "\n"))
	}
}
