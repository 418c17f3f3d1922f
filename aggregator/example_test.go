package aggregator_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor/pebble"
)

// Tally is a small aggregate for the examples.
type Tally struct {
	Total int64
	Count int
}

// Counted is Tally's only event.
type Counted struct{ N int64 }

// EventName implements aggregator.EventData.
func (Counted) EventName() string { return "Counted" }

// AggregateType implements aggregator.Aggregate.
func (*Tally) AggregateType() string { return "example/Tally" }

// SnapshotRevision implements aggregator.Revisioned.
func (*Tally) SnapshotRevision() string { return "1" }

// ApplyEvent implements aggregator.Aggregate.
func (t *Tally) ApplyEvent(e *evento.Event) error {
	switch e.Name {
	case "Counted":
		var d Counted
		if err := e.Decode(&d); err != nil {
			return err
		}
		t.Total += d.N
		t.Count++
		return nil
	}
	return fmt.Errorf("tally: %q: %w", e.Name, aggregator.ErrUnknownEvent)
}

func openExample() *pebble.Store {
	s, err := pebble.OpenMemory(context.Background())
	if err != nil {
		panic(err)
	}
	return s
}

func ExampleCreate() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	b := aggregator.Create("example/Tally").Events(Counted{N: 2}, Counted{N: 3})
	version, err := b.Commit(ctx, store)
	fmt.Println(version, err, len(b.ID()))
	// Output: 2 <nil> 26
}

func ExampleAppend() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	if _, err := aggregator.Append("example/Tally", "t1", 0).Event(Counted{N: 1}).Commit(ctx, store); err != nil {
		panic(err)
	}
	// Commit expecting the version loaded; a stale version conflicts.
	v, err := aggregator.Append("example/Tally", "t1", 1).Event(Counted{N: 1}).Commit(ctx, store)
	fmt.Println(v, err)
	_, err = aggregator.Append("example/Tally", "t1", 1).Event(Counted{N: 1}).Commit(ctx, store)
	fmt.Println(errors.Is(err, evento.ErrVersionConflict))
	// Output:
	// 2 <nil>
	// true
}

func ExampleCommitAll() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	a := aggregator.Append("example/Tally", "a", 0).Event(Counted{N: -5})
	b := aggregator.Append("example/Tally", "b", 0).Event(Counted{N: 5})
	// Both aggregates' events land together, or neither does.
	err := aggregator.CommitAll(ctx, store, a, b)
	fmt.Println(err, a.Version(), b.Version())
	// Output: <nil> 1 1
}

func ExampleLoad() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	b := aggregator.Create("example/Tally").Events(Counted{N: 2}, Counted{N: 3}, Counted{N: 4})
	if _, err := b.Commit(ctx, store); err != nil {
		panic(err)
	}
	var t Tally
	version, err := aggregator.Load(ctx, store, b.ID(), &t)
	fmt.Println(version, t.Total, t.Count, err)

	_, err = aggregator.Load(ctx, store, "missing", &Tally{})
	fmt.Println(errors.Is(err, evento.ErrNotFound))
	// Output:
	// 3 9 3 <nil>
	// true
}

func ExampleLoadWithInfo() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	b := aggregator.Create("example/Tally").Events(Counted{N: 2}, Counted{N: 3}, Counted{N: 4})
	if _, err := b.Commit(ctx, store); err != nil {
		panic(err)
	}
	// A plain load replays everything and saves nothing.
	info, err := aggregator.LoadWithInfo(ctx, store, b.ID(), &Tally{})
	fmt.Printf("%+v %v\n", info, err)

	// Snapshot on demand at version 3, commit one more event: the next
	// load starts from the snapshot and replays one event.
	if err := aggregator.SaveSnapshot(ctx, store, b.ID(), &Tally{Total: 9, Count: 3}, 3); err != nil {
		panic(err)
	}
	if _, err := b.Event(Counted{N: 1}).Commit(ctx, store); err != nil {
		panic(err)
	}
	var t Tally
	info, err = aggregator.LoadWithInfo(ctx, store, b.ID(), &t)
	fmt.Printf("%+v %d %v\n", info, t.Total, err)
	// Output:
	// {Version:3 FromSnapshot:false SnapshotVersion:0 Replayed:3 SnapshotSaved:false} <nil>
	// {Version:4 FromSnapshot:true SnapshotVersion:3 Replayed:1 SnapshotSaved:false} 10 <nil>
}

func ExampleLoadAt() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	b := aggregator.Create("example/Tally").Events(Counted{N: 2}, Counted{N: 3}, Counted{N: 4})
	if _, err := b.Commit(ctx, store); err != nil {
		panic(err)
	}
	var t Tally
	version, err := aggregator.LoadAt(ctx, store, b.ID(), &t, 2)
	fmt.Println(version, t.Total, err)
	// Output: 2 5 <nil>
}

func ExampleHandle() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	errTooMuch := errors.New("tally would pass 10")
	add := func(n int64) aggregator.Decide[*Tally] {
		return func(t *Tally) ([]aggregator.EventData, error) {
			if t.Total+n > 10 {
				return nil, errTooMuch
			}
			return []aggregator.EventData{Counted{N: n}}, nil
		}
	}
	newTally := func() *Tally { return &Tally{} }

	res, err := aggregator.Handle(ctx, store, "t", newTally, add(7))
	fmt.Println(res.Version, res.State.Total, err)
	res, err = aggregator.Handle(ctx, store, "t", newTally, add(7))
	fmt.Println(res.Version, res.State.Total, err)
	// Output:
	// 1 7 <nil>
	// 1 7 tally would pass 10
}

// countByName is an in-memory projection.
type countByName map[string]int

func (c countByName) ApplyEvent(e *evento.Event) error { c[e.Name]++; return nil }

func ExampleProject() {
	ctx := context.Background()
	store := openExample()
	defer store.Close()

	if _, err := aggregator.Create("example/Tally").Events(Counted{N: 1}, Counted{N: 2}).Commit(ctx, store); err != nil {
		panic(err)
	}
	counts := countByName{}
	cursor, err := aggregator.Project(ctx, store, evento.ByType("example/Tally"), counts, "")
	fmt.Println(counts["Counted"], err)

	// Later: resume from the cursor with the events committed since.
	if _, err := aggregator.Create("example/Tally").Events(Counted{N: 3}).Commit(ctx, store); err != nil {
		panic(err)
	}
	_, err = aggregator.Project(ctx, store, evento.ByType("example/Tally"), counts, cursor)
	fmt.Println(counts["Counted"], err)
	// Output:
	// 2 <nil>
	// 3 <nil>
}
