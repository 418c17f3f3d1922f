package aggregator_test

import (
	"context"
	"testing"
	"time"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
)

// benchStore opens a Pebble store holding a 10-event and a 10,000-event
// counter, the long one with a snapshot at its head (revision r1).
func benchStore(b *testing.B) (s aggregator.Store, short, long string) {
	b.Helper()
	ctx := context.Background()
	exec, err := executor.Open(ctx, "pebble:"+b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = exec.Close() })
	sb := aggregator.Create(counterType).Events(adds(10)...)
	if _, err := sb.Commit(ctx, exec); err != nil {
		b.Fatal(err)
	}
	lb := aggregator.Create(counterType)
	for range 10 {
		if _, err := lb.Events(adds(1000)...).Commit(ctx, exec); err != nil {
			b.Fatal(err)
		}
	}
	// The first load replays everything and saves the snapshot.
	if _, err := aggregator.Load(ctx, exec, lb.ID(), newCounter(), aggregator.WithSnapshotOnLoad()); err != nil {
		b.Fatal(err)
	}
	if snap, err := exec.LoadSnapshot(ctx, counterType, "r1", lb.ID(), 0); err != nil || snap.Version != 10_000 {
		b.Fatalf("no snapshot at the head: v%d %v", snap.Version, err)
	}
	return exec, sb.ID(), lb.ID()
}

func loadOrFail(b *testing.B, s aggregator.Store, id string, want uint64, opts ...aggregator.Option) {
	c := newCounter()
	v, err := aggregator.Load(context.Background(), s, id, c, opts...)
	if err != nil || v != want {
		b.Fatalf("Load = v%d, %v; want v%d", v, err, want)
	}
}

// BenchmarkLoad measures loads of a 10-event and a 10,000-event aggregate,
// with and without snapshots, in one run on one Pebble store.
//
// The "ratio" sub-benchmark alternates a 10-event load (snapshots enabled,
// none due, so it pays the snapshot lookup) and a 10,000-event load from a
// snapshot, and reports long-snap/short: the target is <= 2.
func BenchmarkLoad(b *testing.B) {
	s, short, long := benchStore(b)
	b.Run("10/full", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, short, 10, aggregator.WithoutSnapshots())
		}
	})
	b.Run("10/snapshots-on", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, short, 10)
		}
	})
	b.Run("10000/full", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, long, 10_000, aggregator.WithoutSnapshots())
		}
		b.ReportMetric(float64(b.N)*10_000/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("10000/snapshot", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, long, 10_000)
		}
	})
	b.Run("ratio", func(b *testing.B) {
		var tShort, tLong time.Duration
		for b.Loop() {
			t0 := time.Now()
			loadOrFail(b, s, short, 10)
			t1 := time.Now()
			loadOrFail(b, s, long, 10_000)
			tLong += time.Since(t1)
			tShort += t1.Sub(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(tShort.Nanoseconds())/n, "short-ns/load")
		b.ReportMetric(float64(tLong.Nanoseconds())/n, "long-snap-ns/load")
		b.ReportMetric(float64(tLong)/float64(tShort), "long-snap/short")
	})
}

// BenchmarkReplayVsLookups compares a full replay of the 10,000-event
// aggregate (chunked range reads) with fetching the same events one
// ReadAggregate call per version and applying them, in one run. It reports
// replay-speedup = lookups time / replay time (target >= 1).
func BenchmarkReplayVsLookups(b *testing.B) {
	s, _, long := benchStore(b)
	ctx := context.Background()
	var tReplay, tLookups time.Duration
	for b.Loop() {
		t0 := time.Now()
		loadOrFail(b, s, long, 10_000, aggregator.WithoutSnapshots())
		t1 := time.Now()
		c := newCounter()
		for v := uint64(1); v <= 10_000; v++ {
			evs, err := s.ReadAggregate(ctx, counterType, long, v-1, 1)
			if err != nil || len(evs) != 1 {
				b.Fatalf("lookup v%d: %d events, %v", v, len(evs), err)
			}
			if err := c.ApplyEvent(&evs[0]); err != nil {
				b.Fatal(err)
			}
		}
		tLookups += time.Since(t1)
		tReplay += t1.Sub(t0)
	}
	n := float64(b.N)
	b.ReportMetric(n*10_000/tReplay.Seconds(), "replay-events/s")
	b.ReportMetric(n*10_000/tLookups.Seconds(), "lookup-events/s")
	b.ReportMetric(float64(tLookups)/float64(tReplay), "replay-speedup")
}
