package sqlite

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/evento-go/evento"
)

// TestReadAggregateLargeLimitAllocatesForEventsFound checks that a caller
// asking a large limit of a short stream pays for the events found, not for
// the limit.
func TestReadAggregateLargeLimitAllocatesForEventsFound(t *testing.T) {
	s, _ := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "al/A", AggregateID: "a", Version: 1, Name: "E"}, evento.Event{AggregateType: "al/A", AggregateID: "a", Version: 2, Name: "E"})
	const runs, limit = 50, 1024
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		got, err := s.ReadAggregate(t.Context(), "al/A", "a", 0, limit)
		if err != nil || len(got) != 2 {
			t.Fatalf("ReadAggregate = %d events, %v; want 2, nil", len(got), err)
		}
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / runs
	if bound := uint64(256 * unsafe.Sizeof(evento.Event{})); perCall > bound {
		t.Fatalf("ReadAggregate(limit %d) of a 2-event stream allocated %d bytes per call, want <= %d", limit, perCall, bound)
	}
}
