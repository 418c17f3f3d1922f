package executortest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// signalTimeout bounds the wait for a Notify signal or close.
const signalTimeout = 5 * time.Second

// RunNotify runs the notification part of the suite: a receiver is
// signalled after a Write, signals are coalesced without blocking writers,
// and the channel closes when its context ends or the executor closes.
// When the backend declares Capabilities.MultiProcess, a second executor
// over the same store sees the first one's commits and leases, and is
// signalled if CrossProcessNotify is declared too.
func RunNotify(t *testing.T, h Harness) {
	parallel(t, h, "SignalAfterWrite", testNotifySignal)
	parallel(t, h, "SeveralReceivers", testNotifySeveral)
	parallel(t, h, "Coalesced", testNotifyCoalesced)
	parallel(t, h, "ClosesOnCancel", testNotifyCancel)
	parallel(t, h, "ClosesOnClose", testNotifyClose)
	parallel(t, h, "SecondExecutor", testNotifySecondExecutor)
}

// waitSignal waits for one signal on ch, failing if ch closes or nothing
// arrives within signalTimeout.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	if ch == nil {
		t.Fatalf("%s: Notify returned a nil channel", what)
	}
	timer := time.NewTimer(signalTimeout)
	defer timer.Stop()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the Notify channel was closed, want a signal", what)
		}
	case <-timer.C:
		t.Fatalf("%s: no signal on the Notify channel within %v", what, signalTimeout)
	}
}

// waitClosed waits for ch to be closed, accepting signals meanwhile.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	if ch == nil {
		t.Fatalf("%s: Notify returned a nil channel", what)
	}
	timer := time.NewTimer(signalTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: the Notify channel was not closed within %v", what, signalTimeout)
		}
	}
}

// drain takes any pending signal off ch without blocking. It fails if ch is
// closed.
func drain(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the Notify channel is closed, want it open", what)
			}
		default:
			return
		}
	}
}

func testNotifySignal(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ch := x.Notify(t.Context())
	for v := uint64(1); v <= 3; v++ {
		drain(t, ch, "before a Write")
		write(t, x, ev("n/A", "a", v, "N"))
		waitSignal(t, ch, fmt.Sprintf("after Write of version %d", v))
	}
	// A batch over several aggregates signals too.
	drain(t, ch, "before a batch")
	write(t, x, ev("n/A", "a", 4, "N"), ev("n/B", "b", 1, "N"))
	waitSignal(t, ch, "after Write of a batch over two aggregates")
}

func testNotifySeveral(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ctx1, cancel1 := context.WithCancel(t.Context())
	defer cancel1()
	ch1 := x.Notify(ctx1)
	ch2 := x.Notify(t.Context())
	write(t, x, ev("n/A", "a", 1, "N"))
	waitSignal(t, ch1, "first receiver after Write")
	waitSignal(t, ch2, "second receiver after Write")
	cancel1()
	waitClosed(t, ch1, "first receiver after its context was cancelled")
	drain(t, ch2, "second receiver after the first one's context was cancelled")
	write(t, x, ev("n/A", "a", 2, "N"))
	waitSignal(t, ch2, "second receiver after the first one's context was cancelled and another Write")
	ch3 := x.Notify(t.Context())
	write(t, x, ev("n/A", "a", 3, "N"))
	waitSignal(t, ch3, "receiver registered after earlier writes, after a Write")
}

func testNotifyCoalesced(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ch := x.Notify(t.Context())
	const n = 30
	done := make(chan error, 1)
	go func() {
		for v := uint64(1); v <= n; v++ {
			if err := x.Write(t.Context(), []evento.Event{ev("n/A", "a", v, "N")}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	timer := time.NewTimer(waitTimeout * 3)
	defer timer.Stop()
	select {
	case err := <-done:
		noErr(t, err, "Write while a Notify receiver does not read")
	case <-timer.C:
		t.Fatalf("%d writes did not finish within %v while a Notify receiver did not read: Write must not block on receivers", n, waitTimeout*3)
	}
	waitSignal(t, ch, "after writes the receiver did not read at once")
	wantVersion(t, x, "n/A", "a", n)
}

func testNotifyCancel(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	ch := x.Notify(ctx)
	drain(t, ch, "before cancel")
	cancel()
	waitClosed(t, ch, "after its context was cancelled")
	ch = x.Notify(cancelled())
	waitClosed(t, ch, "Notify with an already cancelled context")
	// The executor still works and still signals others.
	other := x.Notify(t.Context())
	write(t, x, ev("n/A", "a", 1, "N"))
	waitSignal(t, other, "another receiver after one receiver's context was cancelled")
}

func testNotifyClose(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ch1 := x.Notify(t.Context())
	ch2 := x.Notify(context.Background())
	if err := x.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	waitClosed(t, ch1, "after Close")
	waitClosed(t, ch2, "after Close (receiver with a background context)")
	waitClosed(t, x.Notify(context.Background()), "Notify called after Close")
}

func testNotifySecondExecutor(t *testing.T, h Harness) {
	x, open := openStore(t, h)
	caps := x.Capabilities()
	if caps.CrossProcessNotify && !caps.MultiProcess {
		t.Errorf("Capabilities %+v: CrossProcessNotify without MultiProcess", caps)
	}
	if !caps.MultiProcess {
		// One executor per store: its Notify is the only one, checked above.
		evs := write(t, x, ev("n/A", "a", 1, "N"))
		checkEvents(t, "Read(All)", readAll(t, x, evento.All()), evs)
		return
	}
	y := reopen(t, open)
	chY := y.Notify(t.Context())
	drain(t, chY, "second executor before a Write on the first")
	evs := write(t, x, ev("n/A", "a", 1, "N"), withRK(ev("n/B", "b", 1, "N"), "rk"))
	if caps.CrossProcessNotify {
		waitSignal(t, chY, "second executor over the same store after a Write on the first (CrossProcessNotify)")
	}
	checkEvents(t, "Read(All) on the second executor after a Write on the first", readAll(t, y, evento.All()), evs)
	wantVersion(t, y, "n/A", "a", 1)
	err := y.Write(t.Context(), []evento.Event{ev("n/A", "a", 1, "N")})
	checkConflict(t, err, "Write on the second executor of a version written by the first", "n/A", "a", 0, 1)
	more := write(t, y, ev("n/A", "a", 2, "N"))
	if !evs[1].Position.Less(more[0].Position) {
		t.Errorf("Write on the second executor got position %s, not after %s committed before by the first", more[0].Position, evs[1].Position)
	}
	checkEvents(t, "Read(All) on the first executor after a Write on the second", readAll(t, x, evento.All()), append(evs, more...))
	claim(t, x, "n/sub", 0, "w1", time.Hour)
	_, err = y.ClaimLease(t.Context(), "n/sub", 0, "w2", time.Hour)
	wantErr(t, err, evento.ErrLeaseHeld, "ClaimLease on the second executor of a lease held through the first")
}
