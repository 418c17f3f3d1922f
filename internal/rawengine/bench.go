package rawengine

import (
	"fmt"

	"github.com/evento-go/evento"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Sides are the contenders of one benchmark. Each runs operations [from, to)
// of the benchmark's b.N; the operation numbers let a side derive versions
// or aggregate ids. Layout may be nil.
type Sides struct {
	// Ours is evento.
	Ours func(from, to int)
	// Raw is the minimal engine of this package doing the same work.
	Raw func(from, to int)
	// Layout is the raw engine writing or reading evento's own layout
	// (same keys, tables, indexes) with none of evento's code: the
	// distance between it and Ours is the code's cost, between it and Raw
	// the schema's.
	Layout func(from, to int)
}

// Compare runs every side for b.N operations of perOp events each, in ten
// interleaved rounds whose order rotates, so that drift of a shared machine
// (other processes, compactions, page cache, checkpoints) falls on all
// sides alike, and reports:
//
//	events/s          Ours
//	raw_events/s      Raw
//	ratio_vs_raw      Ours ÷ Raw (the figure DESIGN.md's targets use)
//	layout_events/s   Layout (when set)
//	ratio_vs_layout   Ours ÷ Layout: the code's overhead on its own schema
//	schema_cost       Layout ÷ Raw: what evento's layout costs the engine
//
// ns/op is reported as 0: each side's rate is the figure.
func Compare(b *testing.B, perOp int, s Sides) {
	b.Helper()
	sides := []func(int, int){s.Ours, s.Raw}
	if s.Layout != nil {
		sides = append(sides, s.Layout)
	}
	dur := make([]time.Duration, len(sides))
	const rounds = 10
	b.ResetTimer()
	for r := range rounds {
		from, to := b.N*r/rounds, b.N*(r+1)/rounds
		if from == to {
			continue
		}
		for k := range sides {
			i := (r + k) % len(sides)
			t0 := time.Now()
			sides[i](from, to)
			dur[i] += time.Since(t0)
		}
	}
	b.StopTimer()
	events := float64(b.N * perOp)
	rate := func(i int) float64 { return events / dur[i].Seconds() }
	b.ReportMetric(rate(0), "events/s")
	b.ReportMetric(rate(1), "raw_events/s")
	b.ReportMetric(rate(0)/rate(1), "ratio_vs_raw")
	if s.Layout != nil {
		b.ReportMetric(rate(2), "layout_events/s")
		b.ReportMetric(rate(0)/rate(2), "ratio_vs_layout")
		b.ReportMetric(rate(2)/rate(1), "schema_cost")
	}
	b.ReportMetric(0, "ns/op")
}

// Parallel runs operations [from, to) over writers goroutines; op gets the
// writer's number. It returns when all are done. A benchmark's 16-writer
// sides use it so that each side runs the same schedule.
func Parallel(from, to, writers int, op func(w int)) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(to) {
				op(w)
			}
		})
	}
	wg.Wait()
}

// FlatBigSize is the number of unrelated events in the large store of a
// flatness benchmark: 100k by default, 1M with EVENTO_BENCH_1M=1.
func FlatBigSize() int {
	if os.Getenv("EVENTO_BENCH_1M") == "1" {
		return 1_000_000
	}
	return 100_000
}

// Flatness measures one read against a small and a large store, alternating
// their order over b.N rounds so that drift of the machine hits both, and
// reports the time per read of each (small_ns/read, big_ns/read), their
// ratio (flat_ratio; flat reads stay near 1) and the ratio of the first read
// of each store, before any cache is warm (first_ratio). small and big run
// the read once and return its duration.
func Flatness(b *testing.B, small, big func() time.Duration) {
	first := big().Seconds() / small().Seconds()
	var ts, tb time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			ts += small()
			tb += big()
		} else {
			tb += big()
			ts += small()
		}
	}
	b.ReportMetric(float64(ts.Nanoseconds())/float64(b.N), "small_ns/read")
	b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "big_ns/read")
	b.ReportMetric(tb.Seconds()/ts.Seconds(), "flat_ratio")
	b.ReportMetric(first, "first_ratio")
}

// CompareAppends is Compare for the append workloads: writers goroutines,
// one aggregate each, commit batches of perCommit events built by batch(n,
// i, id) (the i-th commit of aggregate id) through each side's write. Each
// side keeps its own version counters, so every side appends the same
// aggregates from version 1.
func CompareAppends(b *testing.B, writers, perCommit int, batch func(n, i int, id string) []evento.Event, ours, raw, layout func([]evento.Event) error) {
	locks := make([]sync.Mutex, writers)
	var next [3][]int
	for k := range next {
		next[k] = make([]int, writers)
	}
	side := func(k int, write func([]evento.Event) error) func(from, to int) {
		if write == nil {
			return nil
		}
		return func(from, to int) {
			Parallel(from, to, writers, func(w int) {
				locks[w].Lock()
				defer locks[w].Unlock()
				i := next[k][w]
				next[k][w]++
				if err := write(batch(perCommit, i, fmt.Sprint("w", w))); err != nil {
					b.Error(err)
				}
			})
		}
	}
	Compare(b, perCommit, Sides{Ours: side(0, ours), Raw: side(1, raw), Layout: side(2, layout)})
}
