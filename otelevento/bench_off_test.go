package otelevento_test

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/subscription"
)

// BenchmarkOffPath measures the instrumentation alone with no provider
// configured: a handler call through Instrument's interceptor and the
// calls of Wrap's executor on a store that does nothing (stubExec), so
// that ns/op and allocs/op are the wrapper's own.
//
//	go test ./otelevento -run '^$' -bench OffPath -benchmem
func BenchmarkOffPath(b *testing.B) {
	ctx := context.Background()
	e := &evento.Event{AggregateType: "t/A", AggregateID: "1", Version: 1, Name: "E"}
	next := func(context.Context) error { return nil }
	ic := otelevento.Instrument(subscription.New("k")).Config().Intercept
	c := subscription.Call{Key: "k", Event: e, Attempt: 1}
	x := otelevento.Wrap(&stubExec{})
	obs := x.(aggregator.Observer)
	events := []evento.Event{*e}
	q := evento.ByType("t/A").First(10, "")
	for _, bm := range []struct {
		name string
		f    func()
	}{
		{"Interceptor", func() { _ = ic(ctx, c, next) }},
		{"Write", func() { _ = x.Write(ctx, events) }},
		{"Read", func() { _, _ = x.Read(ctx, q) }},
		{"ReadAggregate", func() { _, _ = x.ReadAggregate(ctx, "t/A", "1", 0, 10) }},
		{"Handle", func() {
			_, end := obs.ObserveHandle(ctx, "1")
			end(aggregator.HandleInfo{AggregateType: "t/A"}, nil)
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bm.f()
			}
		})
	}
}
