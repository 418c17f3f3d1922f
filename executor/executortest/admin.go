package executortest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

// testDeleteSubscriber pins DeleteSubscriber: it removes the subscriber and
// the parked events of that partition only, fences the holder (its renew,
// release and acknowledgement fail with ErrLeaseLost and move nothing), a
// new claim starts from the beginning, and a missing subscriber is
// ErrNotFound.
func testDeleteSubscriber(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ctx := t.Context()
	evs := richEvents(t, x, 3)
	l0 := claim(t, x, "d/k", 0, "w1", time.Hour)
	l1 := claim(t, x, "d/k", 1, "w1", time.Hour)
	p0 := evento.ParkedEvent{Key: "d/k", Partition: 0, Event: evs[0], Error: "e0", Attempts: 1, ParkedAt: now()}
	p1 := evento.ParkedEvent{Key: "d/k", Partition: 1, Event: evs[1], Error: "e1", Attempts: 1, ParkedAt: now()}
	noErr(t, x.Acknowledge(ctx, l0, evento.Ack{Cursor: evs[1].Cursor(), Park: []evento.ParkedEvent{p0}}), "Acknowledge(partition 0, park)")
	noErr(t, x.Acknowledge(ctx, l1, evento.Ack{Cursor: evs[1].Cursor(), Park: []evento.ParkedEvent{p1}}), "Acknowledge(partition 1, park)")

	noErr(t, x.DeleteSubscriber(ctx, "d/k", 0), "DeleteSubscriber(d/k, 0)")
	if _, err := x.Subscriber(ctx, "d/k", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("Subscriber(d/k, 0) after DeleteSubscriber = %v, want ErrNotFound", err)
	}
	parked, err := x.ParkedEvents(ctx, "d/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, "ParkedEvents after deleting partition 0", parked, []evento.ParkedEvent{p1})
	if s := subscriber(t, x, "d/k", 1); s.Cursor != evs[1].Cursor() || s.Holder != "w1" {
		t.Errorf("partition 1 after deleting partition 0: cursor %s holder %q, want %s and w1 (untouched)", describeCursor(s.Cursor), s.Holder, describeCursor(evs[1].Cursor()))
	}

	// The holder of the deleted subscriber is fenced.
	wantErr(t, x.Acknowledge(ctx, l0, evento.Ack{Cursor: evs[2].Cursor()}), evento.ErrLeaseLost, "Acknowledge with the lease of a deleted subscriber")
	if _, err := x.Subscriber(ctx, "d/k", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("Subscriber(d/k, 0) after a fenced Acknowledge = %v, want ErrNotFound (the ack must create nothing)", err)
	}
	if _, err := x.RenewLease(ctx, l0, time.Hour); !errors.Is(err, evento.ErrLeaseLost) {
		t.Errorf("RenewLease of a deleted subscriber = %v, want ErrLeaseLost", err)
	}
	wantErr(t, x.ReleaseLease(ctx, l0), evento.ErrLeaseLost, "ReleaseLease of a deleted subscriber")

	// Claiming again starts from the beginning; the old lease stays fenced
	// even when the new one has the same holder-less history.
	l2 := claim(t, x, "d/k", 0, "w2", time.Hour)
	if s := subscriber(t, x, "d/k", 0); s.Cursor != "" || s.Parked != 0 || len(s.Selection) != 0 {
		t.Errorf("subscriber claimed after delete: cursor %s, parked %d, selection %d bytes; want the start, 0, none", describeCursor(s.Cursor), s.Parked, len(s.Selection))
	}
	wantErr(t, x.Acknowledge(ctx, l0, evento.Ack{Cursor: evs[2].Cursor()}), evento.ErrLeaseLost, "Acknowledge with the old lease after another worker claimed")
	noErr(t, x.Acknowledge(ctx, l2, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge with the new lease")

	wantErr(t, x.DeleteSubscriber(ctx, "d/nope", 0), evento.ErrNotFound, "DeleteSubscriber of an unknown key")
	wantErr(t, x.DeleteSubscriber(ctx, "d/k", 7), evento.ErrNotFound, "DeleteSubscriber of an unknown partition")
}

// testReadOnly pins the DSN option read_only=true: opening a store that
// does not exist fails with executor.ErrNoStore and creates nothing; on an
// existing store reads work and every write fails with executor.ErrReadOnly
// and changes nothing. It needs Harness.DSN.
func testReadOnly(t *testing.T, h Harness) {
	if h.DSN == nil {
		t.Skip("executortest: Harness.DSN is nil; the read_only option is opened by DSN")
	}
	ctx := t.Context()
	dsn := h.DSN(t)
	ro := executor.ReadOnlyDSN(dsn)
	if x, err := executor.Open(ctx, ro); !errors.Is(err, executor.ErrNoStore) {
		if x != nil {
			x.Close()
		}
		t.Fatalf("Open(%s) of a store that does not exist = %v, want ErrNoStore", executor.Redact(ro), err)
	}
	// Nothing was created: a store opened without DDL is still missing.
	if x, err := executor.Open(ctx, withOption(dsn, "migrate=false")); !errors.Is(err, executor.ErrNotMigrated) {
		if x != nil {
			x.Close()
		}
		t.Fatalf("Open(migrate=false) after the read-only attempt = %v, want ErrNotMigrated (the read-only open must create nothing)", err)
	}

	rw, err := executor.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", executor.Redact(dsn), err)
	}
	evs := write(t, rw, ev("ro/A", "a1", 1, "Created"), ev("ro/A", "a1", 2, "Renamed"))
	l := claim(t, rw, "ro/k", 0, "w1", time.Hour)
	noErr(t, rw.Close(), "Close the read-write executor")

	x, err := executor.Open(ctx, ro)
	if err != nil {
		t.Fatalf("Open(%s) of an existing store: %v", executor.Redact(ro), err)
	}
	defer x.Close()
	page, err := x.Read(ctx, evento.All())
	noErr(t, err, "Read on a read-only store")
	checkEvents(t, "Read on a read-only store", page.Events, evs)
	wantHead(t, x, evs[1].Position)
	if s := subscriber(t, x, "ro/k", 0); s.Holder != "w1" {
		t.Errorf("Subscriber on a read-only store: holder %q, want w1", s.Holder)
	}

	more := []evento.Event{ev("ro/A", "a1", 3, "Renamed")}
	writes := []struct {
		name string
		call func() error
	}{
		{"Write", func() error { return x.Write(ctx, more) }},
		{"ClaimLease", func() error { _, err := x.ClaimLease(ctx, "ro/k2", 0, "w2", time.Hour); return err }},
		{"RenewLease", func() error { _, err := x.RenewLease(ctx, l, time.Hour); return err }},
		{"ReleaseLease", func() error { return x.ReleaseLease(ctx, l) }},
		{"Acknowledge", func() error { return x.Acknowledge(ctx, l, evento.Ack{Cursor: evs[1].Cursor()}) }},
		{"ResetSubscriber", func() error { return x.ResetSubscriber(ctx, "ro/k", 0, "") }},
		{"DeleteSubscriber", func() error { return x.DeleteSubscriber(ctx, "ro/k", 0) }},
		{"DeleteParked", func() error { return x.DeleteParked(ctx, "ro/k", 0, evs[0].ID) }},
		{"RecordSelection", func() error { _, err := x.RecordSelection(ctx, "ro/k", 0, []byte("sel")); return err }},
		{"AnnounceWorker", func() error { _, err := x.AnnounceWorker(ctx, "ro/k", "w2", time.Hour); return err }},
		{"WithdrawWorker", func() error { return x.WithdrawWorker(ctx, "ro/k", "w2") }},
		{"SaveSnapshot", func() error {
			return x.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "ro/A", AggregateID: "a1", Revision: "r", Version: 1, Data: []byte{1}})
		}},
		{"PruneSnapshots", func() error { return x.PruneSnapshots(ctx, "ro/A", "r", "a1", 0) }},
	}
	for _, w := range writes {
		wantErr(t, w.call(), executor.ErrReadOnly, w.name+" on a read-only store")
	}
	noErr(t, x.Close(), "Close the read-only executor")

	rw = reopen(t, func(ctx context.Context) (evento.Executor, error) { return executor.Open(ctx, dsn) })
	wantHead(t, rw, evs[1].Position)
	if s := subscriber(t, rw, "ro/k", 0); s.Holder != "w1" || s.Token != l.Token || s.Cursor != "" {
		t.Errorf("subscriber after the refused writes: holder %q token %d cursor %s, want w1, %d, the start", s.Holder, s.Token, describeCursor(s.Cursor), l.Token)
	}
	if _, err := rw.Subscriber(ctx, "ro/k2", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("Subscriber(ro/k2) after a refused ClaimLease = %v, want ErrNotFound", err)
	}
}

// withOption appends a DSN option.
func withOption(dsn, opt string) string {
	for i := 0; i < len(dsn); i++ {
		if dsn[i] == '?' {
			return dsn + "&" + opt
		}
	}
	return dsn + "?" + opt
}
