package subscription

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

// Environment of a catch-up child (see catchUpChild).
const (
	childMode     = "EVENTO_SUBSCRIPTION_CHILD_MODE" // "catchup"; empty: a worker (childMain)
	childLog      = "EVENTO_SUBSCRIPTION_CHILD_LOG"
	childBlockAt  = "EVENTO_SUBSCRIPTION_CHILD_BLOCK_AT"
	childChunk    = "EVENTO_SUBSCRIPTION_CHILD_CHUNK"
	childMaxChunk = "EVENTO_SUBSCRIPTION_CHILD_MAX_CHUNK"
)

// crashKey is the subscription the redelivery test crashes.
const crashKey = "crash-catchup"

// catchUpChild runs CatchUp on the store and logs, one write(2) per line so
// that a SIGKILL loses none, "h <event id>" before each handler returns and
// "a <events>" after each acknowledgement (ChunkAcked: the store has it).
// Its handler blocks for ever in the event numbered blockAt (1-based), so
// the parent kills it in the middle of the catch-up, inside a handler.
func catchUpChild(store evento.Executor) error {
	log, err := os.OpenFile(os.Getenv(childLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	blockAt, err := strconv.Atoi(os.Getenv(childBlockAt))
	if err != nil {
		return err
	}
	chunk, _ := strconv.Atoi(os.Getenv(childChunk))
	maxChunk, _ := strconv.Atoi(os.Getenv(childMaxChunk))
	n := 0
	h := func(ctx context.Context, e *evento.Event) error {
		if _, err := log.WriteString("h " + e.ID.String() + "\n"); err != nil {
			return err
		}
		if n++; n == blockAt {
			select {} // killed here
		}
		return nil
	}
	sig := &Signals{ChunkAcked: func(_ string, _ uint32, _ string, events int) {
		_, _ = fmt.Fprintf(log, "a %d\n", events)
	}}
	return New(crashKey).HandleAll(aggType, h).ChunkSize(chunk).MaxChunkSize(maxChunk).Lease(time.Second, 0).
		Signals(sig).Logger(quiet).CatchUp(context.Background(), store)
}

// TestCrashRedeliversAtMostOneChunk kills a process with SIGKILL in the
// middle of a catch-up, on a real store, lets another worker take over,
// and counts the events handled twice: those handled after the last
// acknowledgement, never more than MaxChunkSize, with the defaults and
// with small chunks; the acknowledgements grew past two pages.
func TestCrashRedeliversAtMostOneChunk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	stores := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"pebble", func(t *testing.T) string { return t.TempDir() }},
		{"sqlite", func(t *testing.T) string { return sqlitePath(t) }},
		{"postgres", func(t *testing.T) string { return postgrestest.DSN(t) }},
	}
	cases := []struct {
		name            string
		events, blockAt int
		chunk, maxChunk int
	}{
		// Defaults: pages of 300 growing to 1000, chunks of 300, 600,
		// 2000, 3000, then 5000 (MaxChunkSize/2, acknowledged in the
		// background while the next is handled; when no chunk reaches
		// MaxChunkAge first): killed in the last event of a chunk.
		{"defaults", 25_000, 20_900, DefaultChunkSize, DefaultMaxChunkSize},
		{"small", 3_000, 1_777, 20, 150},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					dsn := st.dsn(t)
					open := func() evento.Executor {
						exec, err := childOpeners[st.name](context.Background(), dsn)
						if err != nil {
							t.Fatal(err)
						}
						return exec
					}
					exec := open()
					w := newWriter(exec)
					var want []evento.Event
					for len(want) < c.events {
						want = append(want, w.write(t, aggType, "Deposited", "", ids(min(1000, c.events-len(want)), "c")...)...)
					}
					if err := exec.Close(); err != nil { // Pebble: one process at a time
						t.Fatal(err)
					}
					logPath := filepath.Join(t.TempDir(), "deliveries")
					runCrashingChild(t, st.name, dsn, logPath, c.blockAt, c.chunk, c.maxChunk)
					childHandled, childAcks := readDeliveries(t, logPath)

					// Another worker takes over once the dead one's lease
					// expires, and handles the rest.
					exec = open()
					defer exec.Close()
					var again []string
					h := func(_ context.Context, e *evento.Event) error { again = append(again, e.ID.String()); return nil }
					sub := New(crashKey).HandleAll(aggType, h).ChunkSize(c.chunk).MaxChunkSize(c.maxChunk).Logger(quiet)
					var err error
					waitFor(t, 30*time.Second, "the takeover's catch-up", func() bool {
						again = again[:0]
						err = sub.CatchUp(context.Background(), exec)
						return !errors.Is(err, evento.ErrLeaseHeld)
					})
					if err != nil {
						t.Fatal(err)
					}

					seen := map[string]int{}
					for _, id := range childHandled {
						seen[id]++
					}
					redelivered := 0
					for _, id := range again {
						if seen[id] > 0 {
							redelivered++
						}
						seen[id]++
					}
					for _, e := range want {
						if seen[e.ID.String()] == 0 {
							t.Fatalf("event %s never handled", e.ID)
						}
					}
					acked, biggest := 0, 0
					for _, n := range childAcks {
						acked += n
						biggest = max(biggest, n)
						if n > c.maxChunk {
							t.Errorf("an acknowledgement covered %d events, over MaxChunkSize %d", n, c.maxChunk)
						}
					}
					t.Logf("killed in event %d of %d: %d acknowledgements (largest %d events), %d events handled again (bound %d)",
						c.blockAt, c.events, len(childAcks), biggest, redelivered, c.maxChunk)
					if len(childHandled) != c.blockAt {
						t.Fatalf("child handled %d events before it was killed, want %d", len(childHandled), c.blockAt)
					}
					// What was handled after the last acknowledgement (the
					// blocked event included) is handled again: no more than
					// the child's log says was not acknowledged (less when an
					// acknowledgement written in the background was stored
					// but not yet logged when the child was killed).
					if redelivered > c.blockAt-acked {
						t.Errorf("%d events handled again, more than the %d handled minus the %d acknowledged", redelivered, c.blockAt, acked)
					}
					if redelivered < 1 || redelivered > c.maxChunk {
						t.Errorf("%d events handled again, want 1..%d (at most one chunk)", redelivered, c.maxChunk)
					}
					if biggest <= c.chunk*2 {
						t.Errorf("largest acknowledgement covered %d events: chunks did not grow past two pages of %d", biggest, c.chunk)
					}
					if len(again) != c.events-c.blockAt+redelivered {
						t.Errorf("takeover handled %d events, want %d", len(again), c.events-c.blockAt+redelivered)
					}
				})
			}
		})
	}
}

// runCrashingChild starts a catch-up child on the store and kills it with
// SIGKILL once it is blocked in event blockAt.
func runCrashingChild(t *testing.T, backend, dsn, logPath string, blockAt, chunk, maxChunk int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+backend, childDSN+"="+dsn, childMode+"=catchup", childLog+"="+logPath,
		childBlockAt+"="+strconv.Itoa(blockAt), childChunk+"="+strconv.Itoa(chunk), childMaxChunk+"="+strconv.Itoa(maxChunk))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	handled := func() int {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "h ")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for handled() < blockAt {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("catch-up child exited before event %d: %v", blockAt, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("catch-up child handled %d events in 2 minutes, want %d", handled(), blockAt)
		}
		time.Sleep(5 * time.Millisecond) // polling the child's log, not synchronising
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	exited <- err
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("catch-up child ended with %v, want killed by SIGKILL", err)
	}
}

// readDeliveries parses a catch-up child's log: the ids handled, in order,
// and the sizes of its acknowledgements.
func readDeliveries(t *testing.T, path string) (handled []string, acks []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, arg, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "h":
			handled = append(handled, arg)
		case "a":
			n, err := strconv.Atoi(arg)
			if err != nil {
				t.Fatalf("bad ack line %q", sc.Text())
			}
			acks = append(acks, n)
		default:
			t.Fatalf("bad log line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return handled, acks
}

// TestChunksGrowBehindTheHead: a worker behind the head acknowledges chunks
// that double from ChunkSize and never pass MaxChunkSize; at the head it
// acknowledges every page, so a tailing worker acknowledges each new event
// as it comes.
func TestChunksGrowBehindTheHead(t *testing.T) {
	exec := newPebble(t)
	w := newWriter(exec)
	w.write(t, aggType, "Deposited", "", ids(300, "g")...)
	acks := make(chan int, 100)
	rec := newRecorder()
	wk, err := New("grow").HandleAll(aggType, rec.handler).ChunkSize(10).MaxChunkSize(80).Logger(quiet).
		Signals(&Signals{ChunkAcked: func(_ string, _ uint32, _ string, n int) { acks <- n }}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(t, wk); err != nil {
			t.Error(err)
		}
	}()
	var sizes []int
	for sum := 0; sum < 300; {
		n := recv(t, acks, 30*time.Second, "an acknowledgement of the backlog")
		sizes = append(sizes, n)
		sum += n
		if n > 80 {
			t.Errorf("acknowledgement of %d events, over MaxChunkSize 80", n)
		}
	}
	t.Logf("acknowledgements of the backlog: %v", sizes)
	// 10, 20, 40, then 80 at most; unless a chunk reached MaxChunkAge on
	// a slow machine, the first three are exact.
	if sizes[0] != 10 || !slices.Contains(sizes, 80) || len(sizes) > 8 {
		t.Errorf("acknowledgements of the backlog: %v, want 10, 20, 40, then up to 80", sizes)
	}
	// At the head: one acknowledgement per event.
	for range 3 {
		w.write(t, aggType, "Deposited", "", "g000")
		if n := recv(t, acks, 30*time.Second, "the acknowledgement of a new event"); n != 1 {
			t.Errorf("tailing worker acknowledged %d events, want 1", n)
		}
	}
	if n := rec.unique(); n != 303 {
		t.Errorf("handled %d events, want 303", n)
	}
}

// TestCatchUpUnderSmallMaxPage: pages grow behind the head only as far as
// the store allows; a store whose max page size is below the grown page
// (but not below ChunkSize) refuses it with evento.ErrPageTooLarge, and the
// worker keeps to ChunkSize and reads everything.
func TestCatchUpUnderSmallMaxPage(t *testing.T) {
	exec, err := pebble.OpenMemory(context.Background(), pebble.WithMaxPageSize(70))
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Close()
	w := newWriter(exec)
	for range 3 {
		w.write(t, aggType, "Deposited", "", ids(250, "p")...)
	}
	rec := newRecorder()
	if err := New("small-page").HandleAll(aggType, rec.handler).ChunkSize(50).Logger(quiet).CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	if n, c := rec.unique(), rec.count(); n != 750 || c != 750 {
		t.Errorf("handled %d distinct events in %d calls, want 750 once each", n, c)
	}
	st, err := exec.Subscriber(context.Background(), "small-page", 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := rec.delivered[len(rec.delivered)-1]; st.Cursor != last.Cursor() {
		t.Errorf("stored cursor %q, want the last event's %q", st.Cursor, last.Cursor())
	}
}
