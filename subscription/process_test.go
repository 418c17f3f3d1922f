package subscription

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// Environment of a child worker process (the test binary re-executed).
const (
	childEnv     = "EVENTO_SUBSCRIPTION_CHILD" // backend name
	childDSN     = "EVENTO_SUBSCRIPTION_CHILD_DSN"
	childID      = "EVENTO_SUBSCRIPTION_CHILD_ID"
	childEffects = "EVENTO_SUBSCRIPTION_CHILD_EFFECTS"
	childTTL     = "EVENTO_SUBSCRIPTION_CHILD_TTL"
)

// childOpeners open a backend in a child process, by name; the backend test
// files register theirs.
var childOpeners = map[string]func(ctx context.Context, dsn string) (evento.Executor, error){}

// childMain runs one worker until the process is killed. Its handler records
// each event's effect idempotently: a file named after the event id.
func childMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	open := childOpeners[os.Getenv(childEnv)]
	if open == nil {
		return fail(fmt.Errorf("unknown backend %q", os.Getenv(childEnv)))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	store, err := open(ctx, os.Getenv(childDSN))
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	if os.Getenv(childMode) == "catchup" {
		if err := catchUpChild(store); err != nil {
			return fail(err)
		}
		return 0
	}
	ttl, err := time.ParseDuration(os.Getenv(childTTL))
	if err != nil {
		return fail(err)
	}
	dir := os.Getenv(childEffects)
	h := func(ctx context.Context, e *evento.Event) error {
		time.Sleep(time.Millisecond) // simulated work, so the holder is killed mid-stream
		f, err := os.OpenFile(filepath.Join(dir, e.ID.String()), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return nil // already applied: idempotent
		}
		if err != nil {
			return err
		}
		return f.Close()
	}
	w, err := New("proc").HandleAll(aggType, h).ChunkSize(20).Lease(ttl, 0).PollInterval(20*time.Millisecond).
		WorkerID(os.Getenv(childID)).Start(ctx, store)
	if err != nil {
		return fail(err)
	}
	<-ctx.Done()
	if err := w.Stop(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}

// runProcessTakeover runs two worker processes on one store, kills the lease
// holder with SIGKILL, and checks that the other takes over and every event
// gets its effect.
func runProcessTakeover(t *testing.T, backend, dsn string, store evento.Executor) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const ttl = time.Second
	effects := t.TempDir()
	w := newWriter(store)
	want := w.writeN(t, 300, ids(10, "a")...)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string) *exec.Cmd {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+backend, childDSN+"="+dsn, childID+"="+id,
			childEffects+"="+effects, childTTL+"="+ttl.String())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	holder := func() (evento.SubscriberState, bool) {
		st, err := store.Subscriber(context.Background(), "proc", 0)
		return st, err == nil && st.Holder != ""
	}
	count := func() int {
		ents, _ := os.ReadDir(effects)
		return len(ents)
	}
	c1 := start("c1")
	waitFor(t, 30*time.Second, "c1 holding the lease", func() bool { st, ok := holder(); return ok && st.Holder == "c1" })
	c2 := start("c2")
	waitFor(t, 30*time.Second, "some effects", func() bool { return count() >= 30 })
	if n := count(); n >= len(want) {
		t.Fatalf("c1 finished all %d events before it could be killed", n)
	}
	before, _ := holder()
	if err := c1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = c1.Wait()
	waitFor(t, 3*ttl, "c2 taking the lease over", func() bool { st, ok := holder(); return ok && st.Holder == "c2" && st.Token > before.Token })
	t.Logf("%s: c2 took over %v after SIGKILL of the holder (TTL %v)", backend, time.Since(killed).Round(time.Millisecond), ttl)
	more := w.writeN(t, 50, ids(10, "a")...)
	want = append(want, more...)
	waitFor(t, 60*time.Second, "every effect", func() bool { return count() >= len(want) })
	for _, e := range want {
		if _, err := os.Stat(filepath.Join(effects, e.ID.String())); err != nil {
			t.Fatalf("event %s has no effect: %v", e.ID, err)
		}
	}
	// c2 stops gracefully on SIGTERM and releases its lease.
	if err := c2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c2.Wait(); err != nil {
		t.Fatalf("c2 exit: %v", err)
	}
	if st, ok := holder(); ok && st.LeaseExpiresAt.After(time.Now()) {
		t.Errorf("lease still held by %q after c2 stopped", st.Holder)
	}
}
