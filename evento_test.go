package evento_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evento-go/evento"
)

func TestEventDecode(t *testing.T) {
	e := evento.Event{Data: []byte{0x93}}
	var v struct{ A int }
	if err := e.Decode(&v); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("bad payload: %v", err)
	}
}

func TestVersionConflictError(t *testing.T) {
	var err error = &evento.VersionConflictError{AggregateType: "t", AggregateID: "a", Expected: 1, Actual: 3}
	if !errors.Is(err, evento.ErrVersionConflict) {
		t.Fatal("not ErrVersionConflict")
	}
	if !strings.Contains(err.Error(), "expected version 1, store has 3") {
		t.Fatalf("message %q", err)
	}
}

func TestQueryMatchesAndRouting(t *testing.T) {
	e := evento.Event{AggregateType: "t", AggregateID: "a", Name: "X", RoutingKey: "eu"}
	cases := []struct {
		q    evento.Query
		want bool
	}{
		{evento.All(), true},
		{evento.ByType("t"), true},
		{evento.ByType("u"), false},
		{evento.ByAggregate("t", "a"), true},
		{evento.ByAggregate("t", "b"), false},
		{evento.ByName("t", "X"), true},
		{evento.ByName("t", "Y").Or(evento.Filter{AggregateType: "t", AggregateID: "a"}), true},
		{evento.All().WithRouting(evento.RoutingKey("eu")), true},
		{evento.All().WithRouting(evento.RoutingKey("us")), false},
		{evento.All().WithRouting(evento.NoRoutingKey()), false},
		{evento.ByType("t").WithRouting(evento.AnyRouting()), true},
	}
	for i, c := range cases {
		if got := c.q.Matches(&e); got != c.want {
			t.Errorf("case %d: Matches = %v, want %v", i, got, c.want)
		}
	}
	if !evento.RoutingKey("").IsNone() || !evento.NoRoutingKey().Matches("") || evento.NoRoutingKey().Matches("x") {
		t.Fatal("no-key routing")
	}
	q := evento.Query{Filters: []evento.Filter{{AggregateID: "x"}}}
	if err := q.Validate(0); !errors.Is(err, evento.ErrInvalidQuery) {
		t.Fatalf("filter without type: %v", err)
	}
	q = evento.All().First(5000, "")
	if err := q.Validate(0); !errors.Is(err, evento.ErrPageTooLarge) {
		t.Fatalf("oversized page: %v", err)
	}
}

func TestPositionCompare(t *testing.T) {
	a, b, c := evento.Position{Tx: 1, Seq: 9}, evento.Position{Tx: 2, Seq: 1}, evento.Position{Tx: 2, Seq: 2}
	if !a.Less(b) || !b.Less(c) || c.Less(a) || a.Compare(a) != 0 || !(evento.Position{}).IsZero() {
		t.Fatal("Position ordering")
	}
}
