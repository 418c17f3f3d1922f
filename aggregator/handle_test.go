package aggregator_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/snapshot"
)

var errRefused = errors.New("refused")

func TestHandleCreateAndDomainError(t *testing.T) {
	s := newPebble(t)
	ctx := context.Background()
	res, err := aggregator.Handle(ctx, s, "", newCounter, func(c *counter) ([]aggregator.EventData, error) {
		if c.N != 0 {
			return nil, errors.New("exists")
		}
		return []aggregator.EventData{Renamed{Name: "new"}, Added{N: 5}}, nil
	}, aggregator.WithMetadata(evento.Metadata{Actor: "t"}), aggregator.WithRoutingKey("rk"))
	if err != nil || res.ID == "" || res.Version != 2 || res.State.Sum != 5 || res.State.Name != "new" || len(res.Events) != 2 || res.Attempts != 1 {
		t.Fatalf("Handle create = %+v, %v", res, err)
	}
	if e := res.Events[1]; e.Metadata.Actor != "t" || e.RoutingKey != "rk" || e.Position.IsZero() {
		t.Fatalf("committed event %+v lacks metadata, routing key or position", e)
	}
	// A refused command commits nothing and returns the domain error as is.
	res, err = aggregator.Handle(ctx, s, res.ID, newCounter, func(c *counter) ([]aggregator.EventData, error) {
		return nil, errRefused
	})
	if err != errRefused || res.Version != 2 || res.Events != nil {
		t.Fatalf("refused command = %+v, %v; want errRefused at v2", res, err)
	}
	// No events: nothing committed, loaded version returned.
	res, err = aggregator.Handle(ctx, s, res.ID, newCounter, func(c *counter) ([]aggregator.EventData, error) { return nil, nil })
	if err != nil || res.Version != 2 || res.State.Sum != 5 {
		t.Fatalf("no-op command = %+v, %v", res, err)
	}
}

func TestHandleRetriesAndGivesUp(t *testing.T) {
	s := newPebble(t)
	ctx := context.Background()
	b := aggregator.Create(counterType).Event(Added{N: 1})
	if _, err := b.Commit(ctx, s); err != nil {
		t.Fatal(err)
	}
	id := b.ID()
	// decide makes a concurrent write on its first call only: the first
	// commit conflicts, the second round succeeds.
	interfere := func(calls *int) aggregator.Decide[*counter] {
		return func(c *counter) ([]aggregator.EventData, error) {
			*calls++
			if *calls == 1 {
				if _, err := aggregator.Append(counterType, id, c.N).Event(Added{N: 100}).Commit(ctx, s); err != nil {
					return nil, err
				}
			}
			return []aggregator.EventData{Multiplied{By: 2}}, nil
		}
	}
	calls := 0
	_, err := aggregator.Handle(ctx, s, id, newCounter, interfere(&calls), aggregator.WithAttempts(1))
	if !errors.Is(err, evento.ErrVersionConflict) || calls != 1 {
		t.Fatalf("one attempt: %v after %d calls; want a conflict after 1", err, calls)
	}
	calls = 0
	res, err := aggregator.Handle(ctx, s, id, newCounter, interfere(&calls), aggregator.WithAttempts(2))
	if err != nil || calls != 2 || res.Attempts != 2 || res.Version != 4 || res.State.Sum != (1+100+100)*2 {
		t.Fatalf("two attempts: %+v, %v after %d calls", res, err, calls)
	}
}

func TestHandleRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		b := aggregator.Create(counterType).Event(Added{N: 0})
		if _, err := b.Commit(ctx, s); err != nil {
			t.Fatal(err)
		}
		const workers, each = 4, 12
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		var mu sync.Mutex
		retried := 0
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					res, err := aggregator.Handle(ctx, s, b.ID(), newCounter, func(c *counter) ([]aggregator.EventData, error) {
						return []aggregator.EventData{Added{N: int64(w + 1)}}, nil
					}, aggregator.WithAttempts(50), aggregator.WithPolicy(snapshot.EveryN(5)))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					retried += res.Attempts - 1
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Handle: %v", err)
		}
		c := newCounter()
		v, err := aggregator.Load(ctx, s, b.ID(), c, aggregator.WithoutSnapshots())
		if err != nil || v != 1+workers*each {
			t.Fatalf("final version %d, %v; want %d", v, err, 1+workers*each)
		}
		want := int64(0)
		for w := range workers {
			want += int64(w+1) * each
		}
		if c.Sum != want {
			t.Fatalf("sum %d, want %d", c.Sum, want)
		}
		t.Logf("%d commands, %d retries after conflicts", workers*each, retried)
	})
}

func TestRetryStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := aggregator.Retry(ctx, func(ctx context.Context) error {
		calls++
		cancel()
		return &evento.VersionConflictError{AggregateType: counterType, AggregateID: "x", Expected: 1, Actual: 2}
	}, aggregator.WithAttempts(5))
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Retry = %v after %d calls; want context.Canceled after 1", err, calls)
	}
	calls = 0
	err = aggregator.Retry(context.Background(), func(ctx context.Context) error {
		calls++
		return errRefused
	})
	if err != errRefused || calls != 1 {
		t.Fatalf("Retry of a non-conflict error = %v after %d calls", err, calls)
	}
}
