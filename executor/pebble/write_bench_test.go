package pebble

import (
	"context"
	"fmt"
	"testing"

	"github.com/evento-go/evento"
)

// BenchmarkWriteCPU measures the CPU and allocations of Write itself: one
// commit of 1 or 100 events, without WAL syncs so that no fsync hides them
// (W1 and W3 measure the durable path against the raw engine). ns/op and
// allocs/op are per commit.
//
//	go test ./executor/pebble/ -run '^$' -bench WriteCPU -benchmem -count=3
func BenchmarkWriteCPU(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := Open(context.Background(), b.TempDir(), WithSync(false))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			batch := make([]evento.Event, n)
			b.ReportAllocs()
			v := uint64(0)
			for b.Loop() {
				for j := range batch {
					v++
					batch[j] = benchEvent("bank/Account", "acc-1", v)
				}
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
