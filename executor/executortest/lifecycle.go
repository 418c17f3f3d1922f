package executortest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

func runLifecycle(t *testing.T, h Harness) {
	parallel(t, h, "ReopenKeepsEverything", testReopen)
	parallel(t, h, "ClosedGivesErrClosed", testClosed)
	parallel(t, h, "CancelledContext", testCancelledContext)
}

// now returns the current time in UTC truncated to microseconds, the
// precision every backend keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func testReopen(t *testing.T, h Harness) {
	x, open := openStore(t, h)
	evs := write(t, x,
		withRK(withData(ev("re/A", "a", 1, "Opened"), []byte("one")), "tenant"),
		ev("re/B", "b", 1, "Opened"),
	)
	evs = append(evs, write(t, x, func() evento.Event {
		e := withData(ev("re/A", "a", 2, "Moved"), bigPayload(4096))
		e.Metadata = fullMetadata()
		return e
	}())...)
	l, err := x.ClaimLease(t.Context(), "re/sub", 0, "w1", time.Hour)
	noErr(t, err, `ClaimLease("re/sub", 0, "w1", 1h)`)
	parked := evento.ParkedEvent{Key: "re/sub", Partition: 0, Event: evs[0], Error: "handler failed", Attempts: 3, ParkedAt: now()}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[1].Cursor(), Lag: evento.Lag{Events: 1, Time: 1500 * time.Millisecond}, LastError: "boom", Park: []evento.ParkedEvent{parked}}), "Acknowledge")
	_, err = x.ClaimLease(t.Context(), "re/sub", 3, "w2", time.Hour)
	noErr(t, err, `ClaimLease("re/sub", 3, "w2", 1h)`)
	snaps := []evento.Snapshot{
		{AggregateType: "re/A", AggregateID: "a", Revision: "r1", Version: 1, Cursor: evs[0].Cursor(), EventTime: evs[0].Timestamp, Data: []byte("state@1")},
		{AggregateType: "re/A", AggregateID: "a", Revision: "r1", Version: 2, Cursor: evs[2].Cursor(), EventTime: evs[2].Timestamp, Data: []byte("state@2")},
		{AggregateType: "re/A", AggregateID: "a", Revision: "r2", Version: 2, Cursor: evs[2].Cursor(), EventTime: evs[2].Timestamp, Data: []byte("r2@2")},
	}
	for _, s := range snaps {
		noErr(t, x.SaveSnapshot(t.Context(), s), fmt.Sprintf("SaveSnapshot(%s v%d)", s.Revision, s.Version))
	}
	subsBefore, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	parkedBefore, err := x.ParkedEvents(t.Context(), "re/sub")
	noErr(t, err, "ParkedEvents")
	loadedBefore, err := x.LoadSnapshot(t.Context(), "re/A", "r1", "a", 0)
	noErr(t, err, "LoadSnapshot")

	if err := x.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil (Close is idempotent)", err)
	}

	y := reopen(t, open)
	checkEvents(t, "Read(All) after reopen", readAll(t, y, evento.All()), evs)
	wantHead(t, y, evs[len(evs)-1].Position)
	wantVersion(t, y, "re/A", "a", 2)
	wantVersion(t, y, "re/B", "b", 1)
	agg, err := y.ReadAggregate(t.Context(), "re/A", "a", 0, 0)
	noErr(t, err, `ReadAggregate("re/A", "a") after reopen`)
	checkEvents(t, `ReadAggregate("re/A", "a") after reopen`, agg, []evento.Event{evs[0], evs[2]})
	ids, err := y.AggregateIDs(t.Context(), "re/A", "", 10)
	noErr(t, err, "AggregateIDs after reopen")
	if len(ids) != 1 || ids[0] != "a" {
		t.Errorf(`AggregateIDs("re/A") after reopen = %q, want ["a"]`, ids)
	}
	subsAfter, err := y.Subscribers(t.Context())
	noErr(t, err, "Subscribers after reopen")
	if len(subsAfter) != len(subsBefore) {
		t.Errorf("Subscribers after reopen: %d subscribers, want %d", len(subsAfter), len(subsBefore))
	} else {
		for i := range subsBefore {
			if d := subscriberDiff(subsBefore[i], subsAfter[i], true); d != "" {
				t.Errorf("subscriber %q/%d after reopen differs from before: %s", subsBefore[i].Key, subsBefore[i].Partition, d)
			}
		}
	}
	parkedAfter, err := y.ParkedEvents(t.Context(), "re/sub")
	noErr(t, err, "ParkedEvents after reopen")
	checkParked(t, "ParkedEvents(\"re/sub\") after reopen", parkedAfter, parkedBefore)
	loadedAfter, err := y.LoadSnapshot(t.Context(), "re/A", "r1", "a", 0)
	noErr(t, err, "LoadSnapshot after reopen")
	if d := snapshotDiff(loadedBefore, loadedAfter, true); d != "" {
		t.Errorf("LoadSnapshot(\"re/A\", \"r1\", \"a\", 0) after reopen differs from before: %s", d)
	}
	if s, err := y.LoadSnapshot(t.Context(), "re/A", "r2", "a", 0); err != nil || string(s.Data) != "r2@2" {
		t.Errorf("LoadSnapshot(\"re/A\", \"r2\", \"a\", 0) after reopen = (data %q, %v), want data \"r2@2\"", s.Data, err)
	}

	// The lease survived: it is still held and still acknowledges.
	_, err = y.ClaimLease(t.Context(), "re/sub", 0, "w2", time.Hour)
	wantErr(t, err, evento.ErrLeaseHeld, `ClaimLease("re/sub", 0, "w2") after reopen while w1's lease is live`)
	noErr(t, y.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[2].Cursor()}), "Acknowledge with the lease claimed before reopen")
	l2, err := y.ClaimLease(t.Context(), "re/sub", 0, "w1", time.Hour)
	noErr(t, err, `ClaimLease("re/sub", 0, "w1") after reopen`)
	if l2.Token <= l.Token {
		t.Errorf("re-claim after reopen gave token %d, want more than the token %d claimed before reopen", l2.Token, l.Token)
	}

	// Writes continue after the old head, with larger IDs.
	more := write(t, y, ev("re/A", "a", 3, "Again"))
	for i := range evs {
		if !evs[i].Position.Less(more[0].Position) {
			t.Errorf("first write after reopen got position %s, not after %s written before reopen", more[0].Position, describe(&evs[i]))
		}
		if evs[i].ID.Compare(more[0].ID) >= 0 {
			t.Errorf("first write after reopen got ID %s, not after the ID of %s written before reopen (IDs increase with commit order)", more[0].ID, describe(&evs[i]))
		}
	}
	err = y.Write(t.Context(), []evento.Event{ev("re/B", "b", 1, "Again")})
	checkConflict(t, err, "Write of a stale version after reopen", "re/B", "b", 0, 1)
}

func testClosed(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("cl/A", "a", 1, "N"))
	l, err := x.ClaimLease(t.Context(), "cl/sub", 0, "w1", time.Hour)
	noErr(t, err, "ClaimLease")
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Park: []evento.ParkedEvent{{Key: "cl/sub", Event: evs[0], Error: "x", Attempts: 1, ParkedAt: now()}}}), "Acknowledge")
	snap := evento.Snapshot{AggregateType: "cl/A", AggregateID: "a", Revision: "r", Version: 1, Cursor: evs[0].Cursor(), EventTime: evs[0].Timestamp, Data: []byte("s")}
	noErr(t, x.SaveSnapshot(t.Context(), snap), "SaveSnapshot")

	// Two concurrent Closes, then a third: all return nil.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = x.Close() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Close() #%d = %v, want nil", i, err)
		}
	}
	if err := x.Close(); err != nil {
		t.Errorf("Close() after Close() = %v, want nil (Close is idempotent)", err)
	}
	ctx := t.Context()
	calls := []struct {
		name string
		f    func() error
	}{
		{"Write", func() error { return x.Write(ctx, []evento.Event{ev("cl/A", "a", 2, "N")}) }},
		{"Read", func() error { _, err := x.Read(ctx, evento.All()); return err }},
		{"Read(ByAggregate)", func() error { _, err := x.Read(ctx, evento.ByAggregate("cl/A", "a")); return err }},
		{"ReadAggregate", func() error { _, err := x.ReadAggregate(ctx, "cl/A", "a", 0, 0); return err }},
		{"AggregateVersion", func() error { _, err := x.AggregateVersion(ctx, "cl/A", "a"); return err }},
		{"AggregateIDs", func() error { _, err := x.AggregateIDs(ctx, "cl/A", "", 10); return err }},
		{"Head", func() error { _, err := x.Head(ctx); return err }},
		{"ClaimLease", func() error { _, err := x.ClaimLease(ctx, "cl/sub", 0, "w1", time.Hour); return err }},
		{"ClaimLease(new key)", func() error { _, err := x.ClaimLease(ctx, "cl/new", 0, "w1", time.Hour); return err }},
		{"RenewLease", func() error { _, err := x.RenewLease(ctx, l, time.Hour); return err }},
		{"ReleaseLease", func() error { return x.ReleaseLease(ctx, l) }},
		{"Acknowledge", func() error { return x.Acknowledge(ctx, l, evento.Ack{Cursor: evs[0].Cursor()}) }},
		{"Subscriber", func() error { _, err := x.Subscriber(ctx, "cl/sub", 0); return err }},
		{"Subscribers", func() error { _, err := x.Subscribers(ctx); return err }},
		{"ParkedEvents", func() error { _, err := x.ParkedEvents(ctx, "cl/sub"); return err }},
		{"DeleteParked", func() error { return x.DeleteParked(ctx, "cl/sub", 0, evs[0].ID) }},
		{"ResetSubscriber", func() error { return x.ResetSubscriber(ctx, "cl/sub", 0, "") }},
		{"SaveSnapshot", func() error { return x.SaveSnapshot(ctx, snap) }},
		{"LoadSnapshot", func() error { _, err := x.LoadSnapshot(ctx, "cl/A", "r", "a", 0); return err }},
		{"PruneSnapshots", func() error { return x.PruneSnapshots(ctx, "cl/A", "r", "a", 1) }},
	}
	for _, c := range calls {
		wantErr(t, c.f(), evento.ErrClosed, c.name+" after Close")
	}
}

func testCancelledContext(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("cx/A", "a", 1, "N"), ev("cx/A", "a", 2, "N"))
	l, err := x.ClaimLease(t.Context(), "cx/sub", 0, "w1", time.Hour)
	noErr(t, err, "ClaimLease")
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor(), Park: []evento.ParkedEvent{{Key: "cx/sub", Event: evs[0], Error: "x", Attempts: 1, ParkedAt: now()}}}), "Acknowledge")
	snap := evento.Snapshot{AggregateType: "cx/A", AggregateID: "a", Revision: "r", Version: 1, Cursor: evs[0].Cursor(), EventTime: evs[0].Timestamp, Data: []byte("s1")}
	noErr(t, x.SaveSnapshot(t.Context(), snap), "SaveSnapshot")
	before, err := x.Subscriber(t.Context(), "cx/sub", 0)
	noErr(t, err, "Subscriber")

	ctx := cancelled()
	snap2 := snap
	snap2.Version, snap2.Cursor, snap2.Data = 2, evs[1].Cursor(), []byte("s2")
	calls := []struct {
		name string
		f    func() error
	}{
		{"Write", func() error {
			return x.Write(ctx, []evento.Event{ev("cx/A", "a", 3, "N"), ev("cx/A", "new", 1, "N")})
		}},
		{"Read", func() error { _, err := x.Read(ctx, evento.All()); return err }},
		{"Read(ByType)", func() error { _, err := x.Read(ctx, evento.ByType("cx/A")); return err }},
		{"ReadAggregate", func() error { _, err := x.ReadAggregate(ctx, "cx/A", "a", 0, 0); return err }},
		{"AggregateVersion", func() error { _, err := x.AggregateVersion(ctx, "cx/A", "a"); return err }},
		{"AggregateIDs", func() error { _, err := x.AggregateIDs(ctx, "cx/A", "", 10); return err }},
		{"Head", func() error { _, err := x.Head(ctx); return err }},
		{"ClaimLease(new key)", func() error { _, err := x.ClaimLease(ctx, "cx/new", 0, "w1", time.Hour); return err }},
		{"ClaimLease(re-claim)", func() error { _, err := x.ClaimLease(ctx, "cx/sub", 0, "w1", time.Hour); return err }},
		{"RenewLease", func() error { _, err := x.RenewLease(ctx, l, 2*time.Hour); return err }},
		{"Acknowledge", func() error {
			return x.Acknowledge(ctx, l, evento.Ack{Cursor: evs[1].Cursor(), LastError: "moved", Park: []evento.ParkedEvent{{Key: "cx/sub", Event: evs[1], Error: "y", Attempts: 1, ParkedAt: now()}}})
		}},
		{"ReleaseLease", func() error { return x.ReleaseLease(ctx, l) }},
		{"Subscriber", func() error { _, err := x.Subscriber(ctx, "cx/sub", 0); return err }},
		{"Subscribers", func() error { _, err := x.Subscribers(ctx); return err }},
		{"ParkedEvents", func() error { _, err := x.ParkedEvents(ctx, "cx/sub"); return err }},
		{"DeleteParked", func() error { return x.DeleteParked(ctx, "cx/sub", 0, evs[0].ID) }},
		{"ResetSubscriber", func() error { return x.ResetSubscriber(ctx, "cx/sub", 0, evs[1].Cursor()) }},
		{"SaveSnapshot", func() error { return x.SaveSnapshot(ctx, snap2) }},
		{"LoadSnapshot", func() error { _, err := x.LoadSnapshot(ctx, "cx/A", "r", "a", 0); return err }},
		{"PruneSnapshots", func() error { return x.PruneSnapshots(ctx, "cx/A", "r", "a", 0) }},
	}
	for _, c := range calls {
		wantErr(t, c.f(), context.Canceled, c.name+" with a cancelled context")
	}
	// Nothing changed.
	checkUnchanged(t, x, evs, "after calls with a cancelled context")
	wantVersion(t, x, "cx/A", "new", 0)
	_, err = x.Subscriber(t.Context(), "cx/new", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("cx/new", 0) after ClaimLease with a cancelled context`)
	after, err := x.Subscriber(t.Context(), "cx/sub", 0)
	noErr(t, err, "Subscriber")
	if d := subscriberDiff(before, after, true); d != "" {
		t.Errorf("subscriber changed by calls with a cancelled context: %s", d)
	}
	parked, err := x.ParkedEvents(t.Context(), "cx/sub")
	noErr(t, err, "ParkedEvents")
	if len(parked) != 1 || parked[0].Event.ID != evs[0].ID {
		t.Errorf("ParkedEvents after calls with a cancelled context: %d events, want only %s", len(parked), describe(&evs[0]))
	}
	got, err := x.LoadSnapshot(t.Context(), "cx/A", "r", "a", 0)
	noErr(t, err, "LoadSnapshot")
	if got.Version != 1 || string(got.Data) != "s1" {
		t.Errorf("LoadSnapshot after SaveSnapshot with a cancelled context = v%d %q, want v1 \"s1\"", got.Version, got.Data)
	}
	_, err = x.ClaimLease(t.Context(), "cx/sub", 0, "w2", time.Hour)
	wantErr(t, err, evento.ErrLeaseHeld, "ClaimLease by another holder after ReleaseLease with a cancelled context")
}
