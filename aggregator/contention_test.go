package aggregator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento/aggregator"
)

// TestHandleContentionEveryBackend is the conformance check for Handle's
// default retry policy: 50 goroutines each run one command on the same
// aggregate at once, with no options at all. Every command must succeed on
// every backend, whatever the store's conflict timing, and the aggregate
// must end with exactly 50 events at versions 1..50, each one increment.
//
// A policy that counts attempts cannot pass this reliably: with N
// contenders only one commit wins per round, so the last command may need
// about N attempts. The default budget is time (DefaultRetryFor), so the
// same program gives the same answer whichever DSN it runs on.
func TestHandleContentionEveryBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			const n = 50
			const id = "contended"
			start := make(chan struct{})
			errs := make([]error, n)
			attempts := make([]int, n)
			took := make([]time.Duration, n) // reported, not asserted
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					t0 := time.Now()
					res, err := aggregator.Handle(ctx, s, id, newCounter, func(c *counter) ([]aggregator.EventData, error) {
						return []aggregator.EventData{Added{N: 1}}, nil
					})
					errs[i], attempts[i], took[i] = err, res.Attempts, time.Since(t0)
				}()
			}
			close(start)
			wg.Wait()

			ok, maxAttempts, total, slowest := 0, 0, 0, time.Duration(0)
			for i, err := range errs {
				if err != nil {
					t.Errorf("command %d: %v", i, err)
					continue
				}
				ok++
				total += attempts[i]
				maxAttempts = max(maxAttempts, attempts[i])
				slowest = max(slowest, took[i])
			}
			t.Logf("%s: %d/%d commands succeeded; %d rounds in all, at most %d (%v) for one command",
				b.name, ok, n, total, maxAttempts, slowest.Round(time.Millisecond))
			if ok != n {
				t.Fatalf("%d of %d commands failed with default options", n-ok, n)
			}

			evs, err := s.ReadAggregate(ctx, counterType, id, 0, 2*n)
			if err != nil {
				t.Fatalf("ReadAggregate: %v", err)
			}
			if len(evs) != n {
				t.Fatalf("aggregate has %d events, want %d", len(evs), n)
			}
			for i := range evs {
				e := &evs[i]
				var d Added
				if err := e.Decode(&d); err != nil || e.Name != "Added" || d.N != 1 {
					t.Fatalf("event %d = %s %+v (%v), want Added{N: 1}", i, e.Name, d, err)
				}
				if e.Version != uint64(i+1) {
					t.Fatalf("event %d has version %d, want %d: versions must be 1..%d, contiguous", i, e.Version, i+1, n)
				}
			}
			c := newCounter()
			v, err := aggregator.Load(ctx, s, id, c, aggregator.WithoutSnapshots())
			if err != nil || v != n || c.Sum != n || c.N != n {
				t.Fatalf("final state: version %d, sum %d (%v); want %d increments at version %d", v, c.Sum, err, n, n)
			}
		})
	}
}
