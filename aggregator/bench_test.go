package aggregator_test

import (
	"context"
	"testing"
	"time"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/snapshot"
)

// benchStore opens a Pebble store holding a 10-event and a 10,000-event
// counter, the long one with a snapshot at its head (revision r1).
func benchStore(b *testing.B) (s aggregator.Store, short, long string) {
	return benchStoreAt(b, "pebble:"+b.TempDir())
}

// benchStoreAt is benchStore on the store at dsn.
func benchStoreAt(b *testing.B, dsn string) (s aggregator.Store, short, long string) {
	b.Helper()
	ctx := context.Background()
	exec, err := executor.Open(ctx, dsn)
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

// savedOften commits a 10,000-event counter with 100 Handle commands of
// 100 events under policy p, so that every command saves a snapshot (and,
// with a bounded Keep, prunes): the history of snapshot writes and
// deletions a long-lived aggregate accumulates.
func savedOften(b *testing.B, s aggregator.Store, p snapshot.Policy) string {
	b.Helper()
	ctx := context.Background()
	id := aggregator.Create(counterType).ID()
	for range 100 {
		evs := adds(100)
		res, err := aggregator.Handle(ctx, s, id, newCounter, func(*counter) ([]aggregator.EventData, error) { return evs, nil }, aggregator.WithPolicy(p))
		if err != nil || !res.SnapshotSaved {
			b.Fatalf("Handle: saved %v, %v", res.SnapshotSaved, err)
		}
	}
	return id
}

func loadOrFail(b *testing.B, s aggregator.Store, id string, want uint64, opts ...aggregator.Option) {
	c := newCounter()
	v, err := aggregator.Load(context.Background(), s, id, c, opts...)
	if err != nil || v != want {
		b.Fatalf("Load = v%d, %v; want v%d", v, err, want)
	}
}

// BenchmarkLoad measures loads of a 10-event and a 10,000-event aggregate,
// with and without snapshots, in one run on one Pebble store; and loads of
// 10,000-event aggregates whose commands saved 100 snapshots, pruned to
// the default Keep or all kept ("prune-ratio" alternates the three and
// reports the pruned one's load time over the single-snapshot one's and
// over the kept-all one's: the target is ~1).
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
	// Pruning (the default Keep) against keeping every snapshot, after 100
	// saves each: loads from the newest snapshot must cost the same.
	pruned := savedOften(b, s, snapshot.Policy{Every: 100})
	kept := savedOften(b, s, snapshot.Policy{Every: 100, Keep: snapshot.KeepAll})
	b.Run("10000/snapshot-100-saves-pruned", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, pruned, 10_000)
		}
	})
	b.Run("10000/snapshot-100-saves-kept", func(b *testing.B) {
		for b.Loop() {
			loadOrFail(b, s, kept, 10_000)
		}
	})
	b.Run("prune-ratio", func(b *testing.B) {
		var tOne, tPruned, tKept time.Duration
		for b.Loop() {
			t0 := time.Now()
			loadOrFail(b, s, long, 10_000)
			t1 := time.Now()
			loadOrFail(b, s, pruned, 10_000)
			t2 := time.Now()
			loadOrFail(b, s, kept, 10_000)
			tKept += time.Since(t2)
			tPruned += t2.Sub(t1)
			tOne += t1.Sub(t0)
		}
		b.ReportMetric(float64(tPruned)/float64(tOne), "pruned/one-snapshot")
		b.ReportMetric(float64(tPruned)/float64(tKept), "pruned/kept-all")
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

// BenchmarkSnapshotRatio is the snapshot target on every backend: it
// alternates a 10-event load (snapshots enabled, none due, so it pays the
// snapshot lookup) and a 10,000-event load from a snapshot at its head, and
// reports long-snap/short (target <= 2).
//
//	go test ./aggregator/ -run '^$' -bench SnapshotRatio -benchtime=2000x
func BenchmarkSnapshotRatio(b *testing.B) {
	for _, backend := range []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"pebble", func(b *testing.B) string { return "pebble:" + b.TempDir() }},
		{"sqlite", func(b *testing.B) string { return "sqlite:" + b.TempDir() + "/bench.db" }},
		{"postgres", func(b *testing.B) string { return postgrestest.DSN(b) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			s, short, long := benchStoreAt(b, backend.dsn(b))
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

// BenchmarkHandleSave measures a one-event command on Pebble that saves a
// snapshot every time (EveryN(1)), pruning to the default Keep or keeping
// all, against one that saves none: the write-path cost of snapshots.
func BenchmarkHandleSave(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    snapshot.Policy
	}{
		{"no-save", snapshot.OnDemand()},
		{"save-prune", snapshot.EveryN(1)},
		{"save-keep-all", snapshot.Policy{Every: 1, Keep: snapshot.KeepAll}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			exec, err := executor.Open(ctx, "pebble:"+b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer exec.Close()
			id := aggregator.Create(counterType).ID()
			decide := func(*counter) ([]aggregator.EventData, error) { return []aggregator.EventData{Added{N: 1}}, nil }
			for b.Loop() {
				res, err := aggregator.Handle(ctx, exec, id, newCounter, decide, aggregator.WithPolicy(tc.p))
				if err != nil || res.SnapshotSaved != (tc.p.Every > 0) {
					b.Fatalf("Handle: saved %v, %v", res.SnapshotSaved, err)
				}
			}
		})
	}
}
