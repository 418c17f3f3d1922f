package subscription

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// The benchmarks run on every backend:
//
//	go test ./subscription/ -run '^$' -bench . -benchtime=1x
//
// BenchmarkCatchUp reports catch-up throughput through a no-op handler over
// 100k events (worker-ev/s) and, measured in the same run, the raw ordered
// scan through exec.Read with the same query and page size and no worker
// (raw-ev/s, the mean of one scan before and one after the worker), and
// their ratio (x-raw; target >= 0.5).
//
// BenchmarkLatency appends events at a steady 500/s from one writer and
// reports the time from the start of each Write to the handler's call,
// p50 and p99 in milliseconds (targets: p99 <= 5 ms embedded, <= 20 ms
// PostgreSQL). It includes the durable commit itself.

var benchBackends = []struct {
	name string
	open newExecFunc
}{
	{"pebble", newPebble},
	{"sqlite", newSQLite},
	{"postgres", newPostgres},
}

const catchUpEvents = 100_000

func BenchmarkCatchUp(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			exec := be.open(b)
			fill(b, exec, catchUpEvents)
			q := evento.ByType(aggType)
			var raw, worker time.Duration
			nop := func(context.Context, *evento.Event) error { return nil }
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				n := rawScan(b, exec, q, cursor.MaxPageSize)
				raw += time.Since(t0)
				if n != catchUpEvents {
					b.Fatalf("raw scan read %d events", n)
				}
				t0 = time.Now()
				if err := New(fmt.Sprintf("bench-%d", i)).HandleAll(aggType, nop).ChunkSize(cursor.MaxPageSize).Logger(quiet).
					CatchUp(context.Background(), exec); err != nil {
					b.Fatal(err)
				}
				worker += time.Since(t0)
				// Scan again after the worker, so warm-up favours neither.
				t0 = time.Now()
				rawScan(b, exec, q, cursor.MaxPageSize)
				raw += time.Since(t0)
			}
			rawRate := float64(2*b.N*catchUpEvents) / raw.Seconds()
			workerRate := float64(b.N*catchUpEvents) / worker.Seconds()
			b.ReportMetric(rawRate, "raw-ev/s")
			b.ReportMetric(workerRate, "worker-ev/s")
			b.ReportMetric(workerRate/rawRate, "x-raw")
		})
	}
}

// fill writes n events over 100 aggregates in batches of 1000.
func fill(b *testing.B, exec evento.Executor, n int) {
	w := newWriter(exec)
	aggs := ids(100, "agg")
	for done := 0; done < n; done += 1000 {
		batch := make([]string, 0, 1000)
		for i := range 1000 {
			batch = append(batch, aggs[i%len(aggs)])
		}
		if evs := w.write(b, aggType, "Deposited", "", batch...); evs == nil {
			b.FailNow()
		}
	}
}

// rawScan pages through q with exec.Read and no worker, touching each event.
func rawScan(b *testing.B, exec evento.Executor, q evento.Query, page int) int {
	n, after := 0, ""
	for {
		q.Args = cursor.Forward(page, after)
		p, err := exec.Read(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		for i := range p.Events {
			if p.Events[i].Version > 0 {
				n++
			}
		}
		if !p.PageInfo.HasNextPage || len(p.Events) == 0 {
			return n
		}
		after = p.Events[len(p.Events)-1].Cursor()
	}
}

func BenchmarkLatency(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			exec := be.open(b)
			n := b.N
			starts := make([]time.Time, n+1)
			commits := make([]time.Time, n+1)
			var writes []time.Duration
			var post []time.Duration
			lat := make([]time.Duration, 0, n)
			var mu sync.Mutex
			done := make(chan struct{})
			h := func(_ context.Context, e *evento.Event) error {
				mu.Lock()
				defer mu.Unlock()
				now := time.Now()
				lat = append(lat, now.Sub(starts[e.Version]))
				if c := commits[e.Version]; !c.IsZero() {
					post = append(post, max(now.Sub(c), 0))
				} else {
					post = append(post, 0) // handled before Write returned
				}
				if len(lat) == n {
					close(done)
				}
				return nil
			}
			gained := make(chan evento.Lease, 1)
			wk, err := New("latency").HandleAll(aggType, h).Logger(quiet).
				Signals(&Signals{LeaseGained: func(l evento.Lease) { gained <- l }}).Start(context.Background(), exec)
			if err != nil {
				b.Fatal(err)
			}
			<-gained
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for v := 1; v <= n; v++ {
				<-tick.C
				mu.Lock()
				starts[v] = time.Now()
				mu.Unlock()
				if err := exec.Write(context.Background(), []evento.Event{{AggregateType: aggType, AggregateID: "lat", Version: uint64(v), Name: "Deposited"}}); err != nil {
					b.Fatal(err)
				}
				mu.Lock()
				commits[v] = time.Now()
				writes = append(writes, commits[v].Sub(starts[v]))
				mu.Unlock()
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				b.Fatalf("handled %d of %d events", len(lat), n)
			}
			b.StopTimer()
			if err := stop(b, wk); err != nil {
				b.Fatal(err)
			}
			pct := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(lat, 0.50), "p50-ms")
			b.ReportMetric(pct(lat, 0.99), "p99-ms")
			b.ReportMetric(pct(writes, 0.99), "write-p99-ms")
			b.ReportMetric(pct(post, 0.50), "after-commit-p50-ms")
			b.ReportMetric(pct(post, 0.99), "after-commit-p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
