package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/evento-go/evento"
)

// BenchmarkDecodePage measures the CPU and allocations of reading and
// decoding events: a page of 1,000 of the log (W5's unit) and a 100-event
// aggregate (W4's), in memory. ns/op and allocs/op are per read.
//
//	go test ./executor/sqlite/ -run '^$' -bench DecodePage -benchmem -count=3
func BenchmarkDecodePage(b *testing.B) {
	s, err := OpenMemory(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 10_000; i += 100 {
		evs := make([]evento.Event, 100)
		for j := range evs {
			evs[j] = evento.Event{AggregateType: "bank/Account", AggregateID: fmt.Sprint("acc-", (i+j)%100), Version: uint64((i+j)/100 + 1), Name: "MoneyDeposited", Data: benchData, Metadata: evento.Metadata{CorrelationID: "corr-0123456789"}}
		}
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("log-1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Read(ctx, evento.All().First(1000, ""))
			if err != nil || len(p.Events) != 1000 {
				b.Fatal(len(p.Events), err)
			}
		}
	})
	b.Run("aggregate-100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			evs, err := s.ReadAggregate(ctx, "bank/Account", "acc-7", 0, 0)
			if err != nil || len(evs) != 100 {
				b.Fatal(len(evs), err)
			}
		}
	})
}
