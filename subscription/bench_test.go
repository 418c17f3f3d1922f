package subscription

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/internal/rawengine"
)

// The benchmarks run on every backend:
//
//	go test ./subscription/ -run '^$' -bench CatchUp -benchtime=10x
//	go test ./subscription/ -run '^$' -bench Latency -benchtime=2000x
//
// BenchmarkCatchUp (W6) is a subscription's catch-up of 100k events with the
// default settings and a no-op handler (events/s), against the minimal raw
// engine of internal/rawengine on the same storage engine holding the same
// events, read in position order and decoded in pages of 1000 with no
// worker (raw_events/s), in interleaved rounds (rawengine.Compare), and
// their ratio (ratio_vs_raw; target >= 0.5). Each catch-up runs under a new
// key, so it claims, records its selection, reads everything and releases
// like a fresh subscriber.
//
// BenchmarkLatency appends events at a steady 500/s from one writer and
// reports the time from the start of each Write to the handler's call,
// p50 and p99 in milliseconds (targets: p99 <= 5 ms embedded, <= 20 ms
// PostgreSQL). It includes the durable commit itself.

var benchBackends = []struct {
	name string
	open newExecFunc
	raw  func(b *testing.B) rawengine.Engine
}{
	{"pebble", newPebble, func(b *testing.B) rawengine.Engine {
		m, err := rawengine.OpenPebble(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}},
	{"sqlite", newSQLite, func(b *testing.B) rawengine.Engine {
		m, err := rawengine.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "raw.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}},
	{"postgres", newPostgres, func(b *testing.B) rawengine.Engine {
		u, err := url.Parse(postgrestest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		m, err := rawengine.OpenPostgres(context.Background(), postgrestest.BaseDSN(), u.Query().Get("schema"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}},
}

const catchUpEvents = 100_000

func BenchmarkCatchUp(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			exec := be.open(b)
			raw := be.raw(b)
			fill(b, exec, raw, catchUpEvents)
			ctx := context.Background()
			rawengine.Compare(b, catchUpEvents, rawengine.Sides{
				Ours: func(from, to int) {
					for i := from; i < to; i++ {
						n := 0 // the no-op handler counts, to check that nothing was missed
						count := func(context.Context, *evento.Event) error { n++; return nil }
						if err := New(fmt.Sprintf("bench-%d", i)).HandleAll(aggType, count).Logger(quiet).CatchUp(ctx, exec); err != nil {
							b.Fatal(err)
						}
						if n != catchUpEvents {
							b.Fatalf("catch-up handled %d events, want %d", n, catchUpEvents)
						}
					}
				},
				Raw: func(from, to int) {
					for range to - from {
						n, err := rawengine.ScanAll(ctx, raw, cursor.MaxPageSize, nil)
						if err != nil || n != catchUpEvents {
							b.Fatalf("raw scan read %d events: %v", n, err)
						}
					}
				},
			})
		})
	}
}

// fill writes n events over 100 aggregates in batches of 1000 to exec and,
// the same events, to the minimal engine raw.
func fill(b *testing.B, exec evento.Executor, raw rawengine.Engine, n int) {
	w := newWriter(exec)
	aggs := ids(100, "agg")
	for done := 0; done < n; done += 1000 {
		batch := make([]string, 0, 1000)
		for i := range 1000 {
			batch = append(batch, aggs[i%len(aggs)])
		}
		evs := w.write(b, aggType, "Deposited", "", batch...)
		if evs == nil {
			b.FailNow()
		}
		if err := raw.Append(context.Background(), slices.Clone(evs)); err != nil {
			b.Fatal(err)
		}
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
