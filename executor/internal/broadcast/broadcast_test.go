package broadcast

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// within fails the test unless ch yields (a value or its close) in time;
// it reports whether ch is still open.
func within(t *testing.T, ch <-chan struct{}, what string) bool {
	t.Helper()
	select {
	case _, ok := <-ch:
		return ok
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing received within 5s", what)
		return false
	}
}

func empty(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		t.Fatalf("%s: got a value or close (open=%v), want nothing", what, ok)
	default:
	}
}

func TestSignalCoalesces(t *testing.T) {
	var b Broadcaster
	defer b.Close()
	ch1 := b.Subscribe(t.Context())
	ch2 := b.Subscribe(t.Context())
	empty(t, ch1, "before Signal")
	b.Signal()
	b.Signal()
	b.Signal()
	for i, ch := range []<-chan struct{}{ch1, ch2} {
		if !within(t, ch, "after Signal") {
			t.Fatalf("channel %d closed, want a signal", i)
		}
		empty(t, ch, "three signals must coalesce into one")
	}
	if n := b.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

func TestCancelClosesOnlyThatChannel(t *testing.T) {
	var b Broadcaster
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	gone := b.Subscribe(ctx)
	kept := b.Subscribe(t.Context())
	cancel()
	if within(t, gone, "after cancel") {
		t.Fatal("channel of the cancelled context got a value, want closed")
	}
	if n := b.Len(); n != 1 {
		t.Fatalf("Len after cancel = %d, want 1", n)
	}
	b.Signal()
	if !within(t, kept, "Signal after another listener's cancel") {
		t.Fatal("surviving channel closed, want a signal")
	}
}

func TestDoneContextGetsClosedChannel(t *testing.T) {
	var b Broadcaster
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if within(t, b.Subscribe(ctx), "Subscribe with a done ctx") {
		t.Fatal("got a value, want a closed channel")
	}
	if n := b.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestCloseClosesAllAndLaterSubscribes(t *testing.T) {
	var b Broadcaster
	chs := []<-chan struct{}{b.Subscribe(t.Context()), b.Subscribe(t.Context())}
	b.Close()
	b.Close() // idempotent
	chs = append(chs, b.Subscribe(t.Context()))
	for i, ch := range chs {
		if within(t, ch, "after Close") {
			t.Fatalf("channel %d got a value, want closed", i)
		}
	}
	b.Signal() // must not panic on closed channels
}

// TestConcurrentCancelAndClose races context cancellation against Close and
// Signal: every channel must be closed exactly once (a double close panics)
// and no goroutine may outlive the test (goleak in TestMain).
func TestConcurrentCancelAndClose(t *testing.T) {
	for range 50 {
		var b Broadcaster
		var wg sync.WaitGroup
		chs := make([]<-chan struct{}, 20)
		cancels := make([]context.CancelFunc, len(chs))
		for i := range chs {
			ctx, cancel := context.WithCancel(t.Context())
			chs[i], cancels[i] = b.Subscribe(ctx), cancel
		}
		for _, cancel := range cancels {
			wg.Go(cancel)
		}
		wg.Go(b.Signal)
		wg.Go(b.Close)
		wg.Wait()
		for _, ch := range chs {
			// A pending signal may come first; then the close must follow.
			for within(t, ch, "after cancel and Close") {
			}
		}
	}
}
