package executortest

import (
	"errors"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// testAcknowledgeTx pins the store-level rule of evento.TxAcknowledger,
// the primitive under transactional (effectively-once) subscriptions: fn's
// Ack is recorded with the lease check; a failing fn records nothing and
// returns its error; a failing Savepoint returns its error and the
// transaction goes on; a stale lease gives ErrLeaseLost and moves nothing.
// What fn writes through the backend's native handle is checked by each
// backend's worker tests (subscription/tx_test.go), which know the handle.
func testAcknowledgeTx(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ta, ok := x.(evento.TxAcknowledger)
	if !ok {
		t.Skipf("%s does not implement evento.TxAcknowledger (optional): transactional subscriptions are refused with subscription.ErrNotTransactional", x.Capabilities().Name)
	}
	evs := richEvents(t, x, 3)
	l := claim(t, x, "tx/k", 0, "w1", time.Hour)
	ctx := t.Context()

	// Success: the Ack fn returns is recorded.
	ran := false
	noErr(t, ta.AcknowledgeTx(ctx, l, func(tx evento.AckTx) (evento.Ack, error) {
		ran = tx != nil
		return evento.Ack{Cursor: evs[0].Cursor()}, nil
	}), "AcknowledgeTx(cursor of event 0)")
	if !ran {
		t.Errorf("AcknowledgeTx did not run fn with a non-nil AckTx")
	}
	if s := subscriber(t, x, "tx/k", 0); s.Cursor != evs[0].Cursor() {
		t.Errorf("Subscriber cursor after AcknowledgeTx = %s, want event 0's %s", describeCursor(s.Cursor), describeCursor(evs[0].Cursor()))
	}

	// A failing fn records nothing and its error comes back.
	boom := errors.New("handler failed")
	err := ta.AcknowledgeTx(ctx, l, func(evento.AckTx) (evento.Ack, error) {
		return evento.Ack{Cursor: evs[2].Cursor(), LastError: "must not be recorded"}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("AcknowledgeTx with a failing fn = %v, want fn's error", err)
	}
	if s := subscriber(t, x, "tx/k", 0); s.Cursor != evs[0].Cursor() || s.LastError != "" {
		t.Errorf("Subscriber after a failed fn: cursor %s, last error %q; want the cursor unmoved at event 0 and no error", describeCursor(s.Cursor), s.LastError)
	}

	// A failing savepoint returns its error; the transaction goes on and
	// the Ack is recorded.
	noErr(t, ta.AcknowledgeTx(ctx, l, func(tx evento.AckTx) (evento.Ack, error) {
		if err := tx.Savepoint(func() error { return boom }); !errors.Is(err, boom) {
			t.Errorf("Savepoint(failing f) = %v, want f's error", err)
		}
		if err := tx.Savepoint(func() error { return nil }); err != nil {
			t.Errorf("Savepoint(succeeding f) = %v, want nil", err)
		}
		return evento.Ack{Cursor: evs[1].Cursor()}, nil
	}), "AcknowledgeTx after a failed savepoint")
	if s := subscriber(t, x, "tx/k", 0); s.Cursor != evs[1].Cursor() {
		t.Errorf("Subscriber cursor after savepoints = %s, want event 1's %s", describeCursor(s.Cursor), describeCursor(evs[1].Cursor()))
	}

	// A stale lease (the token was bumped by a reset) is refused and moves
	// nothing.
	noErr(t, x.ResetSubscriber(ctx, "tx/k", 0, evs[1].Cursor()), "ResetSubscriber")
	err = ta.AcknowledgeTx(ctx, l, func(evento.AckTx) (evento.Ack, error) {
		return evento.Ack{Cursor: evs[2].Cursor()}, nil
	})
	if !errors.Is(err, evento.ErrLeaseLost) {
		t.Errorf("AcknowledgeTx with a stale lease = %v, want ErrLeaseLost", err)
	}
	if s := subscriber(t, x, "tx/k", 0); s.Cursor != evs[1].Cursor() {
		t.Errorf("Subscriber cursor after a stale AcknowledgeTx = %s, want it unmoved at event 1's %s", describeCursor(s.Cursor), describeCursor(evs[1].Cursor()))
	}
}
