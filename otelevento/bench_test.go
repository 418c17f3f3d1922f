package otelevento_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/subscription"
)

// BenchmarkOverhead measures what the instrumentation costs on Pebble
// (durability off, so that the store's own work is as small as it gets and
// the wrapper's share as large): each operation runs alternately on the
// raw executor and on the wrapped one, in the same loop, and the benchmark
// reports wrapped/raw, the ratio of their total times. "off" wraps with no
// provider configured (the OpenTelemetry no-op); "sdk" with the SDK's
// tracer provider (always sampling, no exporter) and meter provider (no
// reader), the cost of instrumentation switched on.
//
//	go test ./otelevento -run '^$' -bench Overhead -benchtime 20000x
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	ops := []struct {
		name string
		run  func(b *testing.B, x evento.Executor, i int)
	}{
		{"Write", func(b *testing.B, x evento.Executor, i int) {
			e := []evento.Event{{AggregateType: "bench/Counter", AggregateID: fmt.Sprintf("w%T-%d", x, i), Version: 1, Name: "Incremented"}}
			if err := x.Write(ctx, e); err != nil {
				b.Fatal(err)
			}
		}},
		{"Read100", func(b *testing.B, x evento.Executor, _ int) {
			if _, err := x.Read(ctx, evento.ByType("seed/Counter").First(100, "")); err != nil {
				b.Fatal(err)
			}
		}},
		{"Load10", func(b *testing.B, x evento.Executor, _ int) {
			if _, err := aggregator.Load(ctx, x, "s0", &counter{}); err != nil {
				b.Fatal(err)
			}
		}},
		{"Handle", func(b *testing.B, x evento.Executor, i int) {
			if _, err := aggregator.Handle(ctx, x, fmt.Sprintf("h%T-%d", x, i), func() *counter { return &counter{} }, increment(1)); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, mode := range []string{"off", "sdk"} {
		for _, op := range ops {
			b.Run(mode+"/"+op.name, func(b *testing.B) {
				raw := benchStore(b)
				var opts []otelevento.Option
				if mode == "sdk" {
					opts = sdkOpts(b)
				}
				wrapped := otelevento.Wrap(raw, opts...)
				var tRaw, tWrap time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// Alternate which runs first, so that neither gains
					// from the other's warm caches.
					first, second, tFirst, tSecond := raw, wrapped, &tRaw, &tWrap
					if i%2 == 1 {
						first, second, tFirst, tSecond = wrapped, raw, &tWrap, &tRaw
					}
					t0 := time.Now()
					op.run(b, first, i)
					t1 := time.Now()
					op.run(b, second, i)
					*tSecond += time.Since(t1)
					*tFirst += t1.Sub(t0)
				}
				b.ReportMetric(float64(tWrap)/float64(tRaw), "wrapped/raw")
				b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "raw-ns/op")
				b.ReportMetric(float64(tWrap.Nanoseconds())/float64(b.N), "wrapped-ns/op")
			})
		}
	}
}

// BenchmarkHandlerOverhead measures a worker's catch-up over 2,000 events
// with a plain subscription and with an instrumented one (Instrument), in
// the same loop, and reports instrumented/plain.
//
//	go test ./otelevento -run '^$' -bench HandlerOverhead -benchtime 20x
func BenchmarkHandlerOverhead(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"off", "sdk"} {
		b.Run(mode, func(b *testing.B) {
			x := benchStore(b)
			var opts []otelevento.Option
			if mode == "sdk" {
				opts = sdkOpts(b)
			}
			const events = 2000
			seedEvents(b, x, "c", events)
			newSub := func(key string) *subscription.Subscription {
				return subscription.New(key).HandleAll("seed/Counter", func(context.Context, *evento.Event) error { return nil })
			}
			var tPlain, tInst time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				plain := newSub(fmt.Sprintf("plain-%d", i))
				inst := otelevento.Instrument(newSub(fmt.Sprintf("inst-%d", i)), opts...)
				first, second, tFirst, tSecond := plain, inst, &tPlain, &tInst
				if i%2 == 1 {
					first, second, tFirst, tSecond = inst, plain, &tInst, &tPlain
				}
				t0 := time.Now()
				if err := first.CatchUp(ctx, x); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := second.CatchUp(ctx, x); err != nil {
					b.Fatal(err)
				}
				*tSecond += time.Since(t1)
				*tFirst += t1.Sub(t0)
			}
			b.ReportMetric(float64(tInst)/float64(tPlain), "instrumented/plain")
			b.ReportMetric(float64(tPlain.Nanoseconds())/float64(b.N*events), "plain-ns/event")
			b.ReportMetric(float64(tInst.Nanoseconds())/float64(b.N*events), "instrumented-ns/event")
		})
	}
}

func benchStore(b *testing.B) evento.Executor {
	s, err := pebble.Open(context.Background(), b.TempDir(), pebble.WithDurability(executor.DurabilityOff))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	seedAggregate(b, s)
	seedEvents(b, s, "s", 100)
	return s
}

// seedAggregate writes the aggregate test/Counter s0 with 10 events, for
// loads.
func seedAggregate(b *testing.B, x evento.Executor) {
	evs := make([]evento.Event, 10)
	for i := range evs {
		evs[i] = evento.Event{AggregateType: "test/Counter", AggregateID: "s0", Version: uint64(i + 1), Name: "Incremented"}
	}
	if err := x.Write(context.Background(), evs); err != nil {
		b.Fatal(err)
	}
}

// seedEvents writes n aggregates of type seed/Counter with one event each.
func seedEvents(b *testing.B, x evento.Executor, prefix string, n int) {
	evs := make([]evento.Event, 0, 500)
	for i := range n {
		evs = append(evs, evento.Event{AggregateType: "seed/Counter", AggregateID: fmt.Sprintf("%s-%d", prefix, i), Version: 1, Name: "Incremented"})
		if len(evs) == cap(evs) || i == n-1 {
			if err := x.Write(context.Background(), evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

func sdkOpts(b *testing.B) []otelevento.Option {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider()
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return []otelevento.Option{otelevento.WithTracerProvider(tp), otelevento.WithMeterProvider(mp)}
}
