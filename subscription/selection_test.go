package subscription

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// TestSelectionEncodingCanonical: the encoding depends only on the set of
// types, the routing selector and the partition count.
func TestSelectionEncodingCanonical(t *testing.T) {
	a := Selection{Types: []string{"b", "a", "b"}, Routing: evento.RoutingKey("eu"), Partitions: 4}.encode()
	b := Selection{Types: []string{"a", "b"}, Routing: evento.RoutingKey("eu"), Partitions: 4}.encode()
	if string(a) != string(b) {
		t.Fatalf("same selection, different encodings: %x vs %x", a, b)
	}
	for _, other := range []Selection{
		{Types: []string{"a"}, Routing: evento.RoutingKey("eu"), Partitions: 4},
		{Types: []string{"a", "b"}, Routing: evento.NoRoutingKey(), Partitions: 4},
		{Types: []string{"a", "b"}, Routing: evento.AnyRouting(), Partitions: 4},
		{Types: []string{"a", "b"}, Routing: evento.RoutingKey("us"), Partitions: 4},
		{Types: []string{"a", "b"}, Routing: evento.RoutingKey("eu"), Partitions: 2},
	} {
		if string(other.encode()) == string(a) {
			t.Errorf("%v encodes like %v", other, Selection{Types: []string{"a", "b"}, Routing: evento.RoutingKey("eu"), Partitions: 4})
		}
		got, err := decodeSelection(other.encode())
		if err != nil || string(got.encode()) != string(other.encode()) {
			t.Errorf("decode(encode(%v)) = %v, %v", other, got, err)
		}
	}
	// The plan computes it from handlers, skips and catch-alls.
	p := New("k").Handle("t/B", "E", func(context.Context, *evento.Event) error { return nil }).
		HandleAll("t/A", func(context.Context, *evento.Event) error { return nil }).Skip("t/C").Partitions(3).mustPlan(t)
	if got := p.sel.String(); got != `types ["t/A" "t/B" "t/C"], routing any, 3 partitions` {
		t.Errorf("plan selection = %s", got)
	}
}

// testSelectionChanged: a key reused with other types, routing or
// partitions is refused (Start, CatchUp and a running worker's next claim)
// until it is reset; after the reset the new selection reads from the
// start and is recorded.
func testSelectionChanged(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.writeN(t, 10, "a1", "a2")
	w.write(t, "test/Other", "Opened", "eu", "o1", "o2")
	nop := func(context.Context, *evento.Event) error { return nil }
	base := func() *Subscription { return New("sel").HandleAll(aggType, nop).Logger(quiet) }
	if err := base().CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sub    *Subscription
		change string
	}{
		{"types", base().HandleAll("test/Other", nop), `types added ["test/Other"]`},
		{"routing", base().Routing(evento.RoutingKey("eu")), `routing any -> key="eu"`},
		{"partitions", base().Partitions(2), "partitions 1 -> 2"},
	} {
		for _, how := range []string{"Start", "CatchUp"} {
			var err error
			if how == "Start" {
				var wk *Worker
				wk, err = tc.sub.Start(context.Background(), exec)
				if wk != nil {
					_ = stop(t, wk)
					t.Fatalf("%s: %s started a worker with another selection", tc.name, how)
				}
			} else {
				err = tc.sub.CatchUp(context.Background(), exec)
			}
			var sce *SelectionChangedError
			if !errors.Is(err, ErrSelectionChanged) || !errors.As(err, &sce) {
				t.Fatalf("%s: %s = %v, want a *SelectionChangedError", tc.name, how, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.change) || !strings.Contains(msg, "evento reset -key sel") {
				t.Errorf("%s: error %q does not say %q and how to reset", tc.name, msg, tc.change)
			}
		}
	}
	// Nothing was recorded by the refused workers: the old definition runs.
	if err := base().CatchUp(context.Background(), exec); err != nil {
		t.Fatalf("the original definition after refusals: %v", err)
	}
	if subs, _ := exec.Subscribers(context.Background()); len(subs) != 1 {
		t.Errorf("refused workers created subscribers: %d, want 1", len(subs))
	}
	// Reset: the new selection is recorded and reads from the start.
	if err := Reset(context.Background(), exec, "sel", ""); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	wider := New("sel").HandleAll(aggType, rec.handler).HandleAll("test/Other", rec.handler).Logger(quiet)
	if err := wider.CatchUp(context.Background(), exec); err != nil {
		t.Fatalf("new selection after Reset: %v", err)
	}
	if n := rec.unique(); n != 12 {
		t.Errorf("after Reset the new selection handled %d events, want all 12", n)
	}
	if err := base().CatchUp(context.Background(), exec); !errors.Is(err, ErrSelectionChanged) {
		t.Errorf("the old definition after the new one was recorded: %v, want ErrSelectionChanged", err)
	}
	// A running worker re-checks at its next claim: after a reset another
	// definition records its own, and the running one stops with the error.
	// The worker's lease calls are held off (failing) while the reset and
	// the other definition's record happen, so it cannot re-record first.
	fx := &faultyExec{Executor: exec}
	gained := make(chan evento.Lease, 4)
	wk, err := wider.Signals(&Signals{LeaseGained: func(l evento.Lease) { gained <- l }}).Lease(time.Second, 0).Start(context.Background(), fx)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, gained, 10*time.Second, "the worker's lease")
	// Its session records its selection after the claim: wait for that
	// call to return, so it cannot land after the reset below.
	waitFor(t, 10*time.Second, "the worker's selection record", func() bool { return fx.records.Load() >= 1 })
	fx.broken.Store(true)
	if err := Reset(context.Background(), exec, "sel", ""); err != nil {
		t.Fatal(err)
	}
	if got, err := exec.RecordSelection(context.Background(), "sel", 0, base().mustPlan(t).selEnc); err != nil || string(got) != string(base().mustPlan(t).selEnc) {
		t.Fatalf("recording the old definition after the reset: %v", err)
	}
	fx.broken.Store(false)
	recv(t, wk.Done(), 10*time.Second, "the running worker to stop on its next claim")
	if err := wk.Err(); !errors.Is(err, ErrSelectionChanged) {
		t.Errorf("running worker stopped with %v, want ErrSelectionChanged", err)
	}
	_ = stop(t, wk)
}
