package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/evento-go/evento"
)

func withKey(e evento.Event, k string) evento.Event { e.RoutingKey = k; return e }

// TestRoutingKeyFixedByFirstEvent: later events of an aggregate inherit its
// first event's routing key, a different key is refused with a
// *RoutingKeyError and nothing of the batch is written, through the
// single-event and the batch statement.
func TestRoutingKeyFixedByFirstEvent(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustWrite := func(es ...evento.Event) []evento.Event {
		t.Helper()
		if err := s.Write(ctx, es); err != nil {
			t.Fatalf("Write: %v", err)
		}
		return es
	}
	refused := func(given, fixed string, es ...evento.Event) {
		t.Helper()
		err := s.Write(ctx, es)
		var re *evento.RoutingKeyError
		if !errors.As(err, &re) || !errors.Is(err, evento.ErrRoutingKey) {
			t.Fatalf("Write = %v, want a *RoutingKeyError", err)
		}
		if re.Given != given || re.Fixed != fixed {
			t.Fatalf("RoutingKeyError = %+v, want given %q fixed %q", re, given, fixed)
		}
	}
	version := func(typ, id string, want uint64) {
		t.Helper()
		if v, err := s.AggregateVersion(ctx, typ, id); err != nil || v != want {
			t.Fatalf("AggregateVersion(%s, %s) = %d, %v; want %d", typ, id, v, err, want)
		}
	}

	mustWrite(withKey(ev("A", "a", 1), "r1"))
	// Single event, no key: inherits.
	if got := mustWrite(ev("A", "a", 2)); got[0].RoutingKey != "r1" {
		t.Fatalf("inherited key set on the written event = %q, want r1", got[0].RoutingKey)
	}
	mustWrite(withKey(ev("A", "a", 3), "r1"))
	refused("r2", "r1", withKey(ev("A", "a", 4), "r2"))
	version("A", "a", 3)
	// Batch: an existing aggregate without a key beside a new one.
	got := mustWrite(ev("A", "a", 4), withKey(ev("B", "b", 1), "x"), ev("A", "a", 5))
	if got[0].RoutingKey != "r1" || got[1].RoutingKey != "x" || got[2].RoutingKey != "r1" {
		t.Fatalf("batch keys = %q %q %q", got[0].RoutingKey, got[1].RoutingKey, got[2].RoutingKey)
	}
	// Batch: one aggregate's key differs; nothing of the batch is written.
	refused("y", "x", ev("A", "a", 6), withKey(ev("B", "b", 2), "y"), ev("C", "c", 1))
	version("A", "a", 5)
	version("B", "b", 1)
	version("C", "c", 0)
	// An aggregate created without a key keeps none.
	mustWrite(ev("C", "c", 1))
	refused("k", "", withKey(ev("C", "c", 2), "k"))
	refused("k", "", ev("A", "a", 6), withKey(ev("C", "c", 2), "k"), withKey(ev("C", "c", 3), "k"))
	mustWrite(ev("C", "c", 2), ev("A", "a", 6))
	// The key given for part of an existing aggregate's span.
	mustWrite(ev("A", "a", 7), withKey(ev("A", "a", 8), "r1"))
	// A version conflict is reported as such even when the key differs too.
	err := s.Write(ctx, []evento.Event{withKey(ev("A", "a", 3), "zz")})
	if !errors.Is(err, evento.ErrVersionConflict) {
		t.Fatalf("Write at a stale version with another key = %v, want a version conflict", err)
	}

	// What the log holds.
	p, err := s.Read(ctx, evento.All().First(100, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "r1", "B": "x", "C": ""}
	n := 0
	for _, e := range p.Events {
		n++
		if e.RoutingKey != want[e.AggregateType] {
			t.Errorf("%s/%s v%d stored with key %q, want %q", e.AggregateType, e.AggregateID, e.Version, e.RoutingKey, want[e.AggregateType])
		}
	}
	if n != 8+1+2 {
		t.Fatalf("log holds %d events, want 11", n)
	}
	rk, err := s.Read(ctx, evento.All().WithRouting(evento.RoutingKey("r1")).First(100, ""))
	if err != nil || len(rk.Events) != 8 {
		t.Fatalf("Read(routing r1) = %d events, %v; want 8", len(rk.Events), err)
	}
}
