package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadShapes measures one Read of a page of 100 events, or of the
// empty page at the head (what a tailing reader reads most), for one-arm
// and several-arm queries, over 30,000 events of types A, B and C.
//
//	go test ./executor/sqlite/ -run '^$' -bench ReadShapes -benchtime=3000x
func BenchmarkReadShapes(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "read.db"), WithSynchronous("off"), WithMaxPageSize(20000))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const aggs, per = 300, 100
	for a := range aggs {
		typ := [...]string{"A", "B", "C"}[a%3]
		batch := make([]evento.Event, per)
		for v := range batch {
			batch[v] = evento.Event{AggregateType: typ, AggregateID: fmt.Sprint("agg-", a), Version: uint64(v + 1), Name: "Happened", Data: make([]byte, 100)}
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	// A cursor in the middle of the log and one at its head.
	all, err := s.Read(ctx, evento.All().Last(1, ""))
	if err != nil {
		b.Fatal(err)
	}
	headCursor := all.PageInfo.EndCursor
	mid, err := s.Read(ctx, evento.All().First(aggs*per/2, ""))
	if err != nil {
		b.Fatal(err)
	}
	midCursor := mid.PageInfo.EndCursor
	shapes := []struct {
		name string
		q    evento.Query
	}{
		{"1arm", evento.ByType("A")},
		{"2arm", evento.ByType("A").Or(evento.Filter{AggregateType: "B"})},
		{"3arm", evento.ByType("A").Or(evento.Filter{AggregateType: "B"}, evento.Filter{AggregateType: "C", Name: "Happened"})},
	}
	for _, sh := range shapes {
		for _, at := range []struct {
			name   string
			cursor string
		}{{"start", ""}, {"mid", midCursor}, {"head", headCursor}} {
			b.Run(sh.name+"/"+at.name, func(b *testing.B) {
				q := sh.q.First(100, at.cursor)
				cpu0 := cpuTime()
				for b.Loop() {
					p, err := s.Read(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					if at.name != "head" && len(p.Events) != 100 {
						b.Fatalf("%d events", len(p.Events))
					}
				}
				// CPU time is steadier than wall time on a shared machine.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
