package executortest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// BenchHarness tells Benchmark how to make stores for a backend.
type BenchHarness struct {
	// NewStore returns an OpenFunc over a fresh, empty storage location
	// owned by b, cleaned up with b.Cleanup. Benchmark closes every
	// executor it opens.
	NewStore func(b *testing.B) OpenFunc
}

// Benchmark runs the workloads every backend is measured on, each as a
// sub-benchmark reporting events/s: appends of one event per commit from
// one and from 16 writers, batches of 100, an aggregate replay and a walk
// over the global log. Backends compare these figures with their raw
// engine doing the same minimal work in the same run.
func Benchmark(b *testing.B, h BenchHarness) {
	b.Run("Append1", func(b *testing.B) { benchAppend(b, h, 1) })
	b.Run("AppendBatch100", func(b *testing.B) { benchAppend(b, h, 100) })
	b.Run("Append16Writers", func(b *testing.B) { benchAppendParallel(b, h, 16) })
	b.Run("ReadAggregate1000", func(b *testing.B) { benchReadAggregate(b, h, 1000) })
	b.Run("ReadAllPages", func(b *testing.B) { benchReadAll(b, h, 10000) })
}

func benchOpen(b *testing.B, h BenchHarness) evento.Executor {
	b.Helper()
	if h.NewStore == nil {
		b.Fatal("executortest: BenchHarness.NewStore is nil")
	}
	x, err := h.NewStore(b)(context.Background())
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() {
		if err := x.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return x
}

// benchPayload is a ~100-byte msgpack payload, the size the targets use.
var benchPayload = func() []byte {
	b, err := evento.Marshal(map[string]any{"account": "acc-0001", "amount": 12345, "currency": "EUR", "note": "benchmark payload of about one hundred bytes"})
	if err != nil {
		panic(err)
	}
	return b
}()

func benchBatch(id string, from uint64, n int) []evento.Event {
	batch := make([]evento.Event, n)
	for i := range batch {
		batch[i] = evento.Event{AggregateType: "bench/Account", AggregateID: id, Version: from + uint64(i), Name: "Deposited", Data: benchPayload}
	}
	return batch
}

func reportEvents(b *testing.B, events int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(events)/s, "events/s")
	}
}

func benchAppend(b *testing.B, h BenchHarness, per int) {
	x := benchOpen(b, h)
	ctx := b.Context()
	version := uint64(1)
	ops := 0
	for b.Loop() {
		if err := x.Write(ctx, benchBatch("a", version, per)); err != nil {
			b.Fatalf("Write: %v", err)
		}
		version += uint64(per)
		ops++
	}
	reportEvents(b, ops*per)
}

func benchAppendParallel(b *testing.B, h BenchHarness, writers int) {
	x := benchOpen(b, h)
	ctx := b.Context()
	var next, ops atomic.Int64
	procs := max(1, writers/runtime.GOMAXPROCS(0))
	b.SetParallelism(procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("w%d", next.Add(1))
		version := uint64(1)
		for pb.Next() {
			if err := x.Write(ctx, benchBatch(id, version, 1)); err != nil {
				b.Errorf("Write: %v", err)
				return
			}
			version++
			ops.Add(1)
		}
	})
	reportEvents(b, int(ops.Load()))
}

func benchReadAggregate(b *testing.B, h BenchHarness, n int) {
	x := benchOpen(b, h)
	ctx := b.Context()
	for v := 1; v <= n; v += 100 {
		if err := x.Write(ctx, benchBatch("a", uint64(v), min(100, n-v+1))); err != nil {
			b.Fatalf("Write: %v", err)
		}
		// Unrelated events between the aggregate's.
		if err := x.Write(ctx, benchBatch(fmt.Sprintf("other%d", v), 1, 100)); err != nil {
			b.Fatalf("Write: %v", err)
		}
	}
	ops := 0
	for b.Loop() {
		evs, err := x.ReadAggregate(ctx, "bench/Account", "a", 0, 0)
		if err != nil || len(evs) != n {
			b.Fatalf("ReadAggregate = %d events, %v; want %d", len(evs), err, n)
		}
		ops++
	}
	reportEvents(b, ops*n)
}

func benchReadAll(b *testing.B, h BenchHarness, n int) {
	x := benchOpen(b, h)
	ctx := b.Context()
	for v := 1; v <= n; v += 1000 {
		for i := 0; i < 10; i++ {
			if err := x.Write(ctx, benchBatch(fmt.Sprintf("a%d", i), uint64(v/10+1), 100)); err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
	}
	ops := 0
	for b.Loop() {
		ops++
		after, total := "", 0
		for {
			p, err := x.Read(ctx, evento.All().First(cursor.MaxPageSize, after))
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
			total += len(p.Events)
			if !p.PageInfo.HasNextPage {
				break
			}
			after = p.PageInfo.EndCursor
		}
		if total != n {
			b.Fatalf("walk read %d events, want %d", total, n)
		}
	}
	reportEvents(b, ops*n)
}
