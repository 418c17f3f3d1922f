package subscription

import (
	"context"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// testStatusLag: Status computes lag when asked, from the stored cursor to
// the head of the subscriber's own selection (types, routing, partition):
// a stopped worker with 150 pending shows 150, exact, not the 0 recorded
// at its last acknowledgement; past the count cap it is an estimate.
func testStatusLag(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.writeN(t, 60, ids(6, "q")...)
	nop := func(context.Context, *evento.Event) error { return nil }
	subs := map[string]*Subscription{
		"lag":   New("lag").HandleAll(aggType, nop).Logger(quiet),
		"lag-p": New("lag-p").HandleAll(aggType, nop).Partitions(3).Logger(quiet),
		"lag-r": New("lag-r").HandleAll(aggType, nop).Routing(evento.RoutingKey("eu")).Logger(quiet),
	}
	before := time.Now()
	for _, s := range subs {
		if err := s.CatchUp(context.Background(), exec); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Status(context.Background(), exec, "lag")
	if err != nil || len(st) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if st[0].Pending != 0 || !st[0].PendingExact || st[0].Selection == nil || st[0].AckedAt.IsZero() || st[0].Position.IsZero() {
		t.Errorf("Status after catching up = %+v, want 0 pending (exact), the selection, an acknowledgement time and a cursor position", st[0])
	}
	// 150 events of its type (10 with routing key eu), 40 of another type.
	for i := range 150 {
		if i%15 == 0 {
			w.write(t, aggType, "Deposited", "eu", "eu1")
		} else {
			w.write(t, aggType, "Deposited", "", ids(6, "q")[i%6])
		}
		if i%4 == 0 {
			w.write(t, "test/Other", "Opened", "", "o")
		}
	}
	st, err = Status(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]uint64{}
	for _, s := range st {
		if !s.PendingExact {
			t.Errorf("%s/%d: pending %d labelled estimated, want exact under the cap", s.Key, s.Partition, s.Pending)
		}
		if s.Key == "lag-r" { // it never had an event to acknowledge
			if s.SinceAck != 0 || !s.AckedAt.IsZero() {
				t.Errorf("%s/%d: SinceAck %v AckedAt %v with no acknowledgement, want zero", s.Key, s.Partition, s.SinceAck, s.AckedAt)
			}
		} else if s.SinceAck <= 0 || s.SinceAck > time.Since(before)+time.Second {
			t.Errorf("%s/%d: SinceAck %v, want the time since its acknowledgement (at most %v)", s.Key, s.Partition, s.SinceAck, time.Since(before))
		}
		if s.Lag.Events != 0 {
			t.Errorf("%s/%d: stored Lag.Events %d, want the 0 recorded at the acknowledgement", s.Key, s.Partition, s.Lag.Events)
		}
		pending[s.Key] += s.Pending
	}
	if pending["lag"] != 150 || pending["lag-p"] != 150 || pending["lag-r"] != 10 {
		t.Errorf("pending = %v, want lag 150, lag-p 150 (over its 3 partitions), lag-r 10 (routing eu)", pending)
	}
	// Past the cap the count is an estimate, in the right range.
	defer func(c int) { StatusCountCap = c }(StatusCountCap)
	StatusCountCap = 40
	st, err = Status(context.Background(), exec, "lag")
	if err != nil || len(st) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if st[0].PendingExact || st[0].Pending < 40 || st[0].Pending > 300 {
		t.Errorf("Status over the cap: pending %d exact %v, want an estimate near 150", st[0].Pending, st[0].PendingExact)
	}
	t.Logf("estimated pending over a cap of 40: %d (exact 150)", st[0].Pending)
}
