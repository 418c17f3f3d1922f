package aggregator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/oklog/ulid/v2"
)

func TestCommitNewAndExisting(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		b := aggregator.Create(counterType).Events(Added{N: 2}, Multiplied{By: 5}, Renamed{Name: "x"})
		if _, err := ulid.ParseStrict(b.ID()); err != nil {
			t.Fatalf("Create id %q is not a ULID: %v", b.ID(), err)
		}
		v, err := b.Commit(ctx, s)
		if err != nil || v != 3 {
			t.Fatalf("Commit = %d, %v; want 3, nil", v, err)
		}
		if got := b.Committed(); len(got) != 3 || got[0].ID == (ulid.ULID{}) || got[2].Version != 3 {
			t.Fatalf("Committed = %+v", got)
		}
		if b.Version() != 3 || b.Len() != 0 {
			t.Fatalf("after commit: Version %d Len %d, want 3 0", b.Version(), b.Len())
		}
		// The builder continues from the new version.
		if v, err := b.Event(Added{N: 1}).Commit(ctx, s); err != nil || v != 4 {
			t.Fatalf("second Commit = %d, %v; want 4, nil", v, err)
		}
		// An existing aggregate at its loaded version.
		c := newCounter()
		lv, err := aggregator.Load(ctx, s, b.ID(), c)
		if err != nil || lv != 4 {
			t.Fatalf("Load = %d, %v", lv, err)
		}
		if v, err := aggregator.Append(counterType, b.ID(), lv).Event(Added{N: 10}).Commit(ctx, s); err != nil || v != 5 {
			t.Fatalf("Append commit = %d, %v; want 5", v, err)
		}
		// A stale version conflicts and writes nothing.
		_, err = aggregator.Append(counterType, b.ID(), lv).Event(Added{N: 100}).Commit(ctx, s)
		var vc *evento.VersionConflictError
		if !errors.Is(err, evento.ErrVersionConflict) || !errors.As(err, &vc) || vc.Expected != 4 || vc.Actual != 5 {
			t.Fatalf("stale commit error = %v; want a conflict expected 4 actual 5", err)
		}
		// Creating under an existing id conflicts too.
		if _, err := aggregator.Append(counterType, b.ID(), 0).Event(Added{N: 1}).Commit(ctx, s); !errors.Is(err, evento.ErrVersionConflict) {
			t.Fatalf("create over existing id: %v; want a conflict", err)
		}
		c = newCounter()
		if v, err := aggregator.Load(ctx, s, b.ID(), c); err != nil || v != 5 {
			t.Fatalf("final Load = %d, %v", v, err)
		}
		want := model(b.ID(), []aggregator.EventData{Added{N: 2}, Multiplied{By: 5}, Renamed{Name: "x"}, Added{N: 1}, Added{N: 10}})
		if c.state() != want {
			t.Fatalf("state %+v, want %+v", c.state(), want)
		}
	})
}

func TestCommitMetadataAndRoutingKey(t *testing.T) {
	s := newPebble(t)
	ctx := context.Background()
	md := evento.Metadata{CorrelationID: "c1", Actor: "ada", Extra: map[string]string{"k": "v"}}
	b := aggregator.Create(counterType).Event(Added{N: 1}).Metadata(md).RoutingKey("eu").Event(Added{N: 2})
	if _, err := b.Commit(ctx, s); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadAggregate(ctx, counterType, b.ID(), 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("ReadAggregate = %d events, %v", len(evs), err)
	}
	for _, e := range evs {
		if !e.Metadata.Equal(md) || e.RoutingKey != "eu" {
			t.Errorf("v%d: metadata %+v routing %q; want %+v \"eu\"", e.Version, e.Metadata, e.RoutingKey, md)
		}
	}
}

func TestCommitWrongTypeAndEmpty(t *testing.T) {
	s := newPebble(t)
	ctx := context.Background()
	cases := map[string]*aggregator.Builder{
		"wrong type":  aggregator.Create(counterType).Event(Added{N: 1}).Event(foreign{}),
		"empty":       aggregator.Create(counterType),
		"nil payload": aggregator.Create(counterType).Event(nil),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := b.Commit(ctx, s)
			if !errors.Is(err, evento.ErrInvalidEvent) {
				t.Fatalf("Commit error = %v; want ErrInvalidEvent", err)
			}
			if v != 0 {
				t.Errorf("version %d, want 0", v)
			}
			if got, err := s.AggregateVersion(ctx, counterType, b.ID()); err != nil || got != 0 {
				t.Errorf("stored version %d, %v; want nothing written", got, err)
			}
		})
	}
	// The wrong type is reported at the offending event, even in a batch.
	b1 := aggregator.Create(counterType).Event(Added{N: 1})
	b2 := aggregator.Create(counterType).Event(foreign{})
	var ie *evento.InvalidEventError
	if err := aggregator.CommitAll(ctx, s, b1, b2); !errors.As(err, &ie) || ie.Index != 0 {
		t.Fatalf("CommitAll with a wrong-type event = %v; want an InvalidEventError at index 0", err)
	}
	if got, _ := s.AggregateVersion(ctx, counterType, b1.ID()); got != 0 {
		t.Fatalf("CommitAll wrote %d events of the valid builder", got)
	}
	if err := aggregator.CommitAll(ctx, s); !errors.Is(err, evento.ErrInvalidEvent) {
		t.Fatalf("CommitAll() = %v; want ErrInvalidEvent", err)
	}
	if err := aggregator.CommitAll(ctx, s, b1, aggregator.Create(counterType)); !errors.Is(err, evento.ErrInvalidEvent) {
		t.Fatalf("CommitAll with an empty builder = %v; want ErrInvalidEvent", err)
	}
}

func TestCommitAllAtomic(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		a := aggregator.Create(counterType).Event(Added{N: 1})
		b := aggregator.Create(counterType).Events(Added{N: 2}, Added{N: 3})
		if err := aggregator.CommitAll(ctx, s, a, b); err != nil {
			t.Fatal(err)
		}
		if a.Version() != 1 || b.Version() != 2 || len(a.Committed()) != 1 || len(b.Committed()) != 2 {
			t.Fatalf("after CommitAll: a v%d (%d), b v%d (%d)", a.Version(), len(a.Committed()), b.Version(), len(b.Committed()))
		}
		// b is made stale; the batch fails whole and a is not written.
		if _, err := aggregator.Append(counterType, b.ID(), 2).Event(Added{N: 9}).Commit(ctx, s); err != nil {
			t.Fatal(err)
		}
		a.Event(Added{N: 4})
		b.Event(Added{N: 5})
		err := aggregator.CommitAll(ctx, s, a, b)
		if !errors.Is(err, evento.ErrVersionConflict) {
			t.Fatalf("CommitAll with a stale builder = %v; want a conflict", err)
		}
		if v, _ := s.AggregateVersion(ctx, counterType, a.ID()); v != 1 {
			t.Fatalf("a is at version %d after a failed batch, want 1", v)
		}
		if v, _ := s.AggregateVersion(ctx, counterType, b.ID()); v != 3 {
			t.Fatalf("b is at version %d, want 3", v)
		}
		if a.Version() != 1 || a.Len() != 1 {
			t.Fatalf("a failed commit changed the builder: v%d len %d", a.Version(), a.Len())
		}
	})
}
