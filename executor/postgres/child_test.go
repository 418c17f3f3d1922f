package postgres_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres"
)

// childEnv, when set to a DSN, makes the test binary a writer child of
// TestMultiProcess instead of running tests.
const childEnv = "EVENTO_POSTGRES_TEST_CHILD"

const (
	childCommits = 60
	children     = 3
)

// childEvents is how many events child c writes: commits of 1 to 3 events.
func childEvents(c int) int {
	n := 0
	for i := range childCommits {
		n += 1 + (i+c)%3
	}
	return n
}

// runChild appends childCommits commits to its own aggregate, then exits.
func runChild() int {
	switch os.Getenv(childEnv + "_ROLE") {
	case roleOrdering:
		return runOrderingChild()
	}
	dsn := os.Getenv(childEnv)
	id, _ := strconv.Atoi(os.Getenv(childEnv + "_ID"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 1
	}
	defer s.Close()
	v := uint64(0)
	for i := range childCommits {
		var batch []evento.Event
		for range 1 + (i+id)%3 {
			v++
			batch = append(batch, ev("mp", fmt.Sprintf("c%d", id), v))
		}
		if err := s.Write(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, "child write:", err)
			return 1
		}
	}
	return 0
}

// TestMultiProcess re-executes the test binary as several child processes
// appending concurrently to one schema while this process tails the log:
// every event is seen once, in an order that never goes back, and each
// aggregate's events in version order.
func TestMultiProcess(t *testing.T) {
	s, dsn := open(t)
	ctx := context.Background()
	done := make(chan error, children)
	for c := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dsn, childEnv+"_ID="+strconv.Itoa(c))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
	}
	r := newTailer(t, s)
	notify := s.Notify(ctx)
	deadline := time.After(3 * time.Minute)
	exited := 0
	for exited < children {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child: %v", err)
			}
			exited++
		case <-notify:
		case <-deadline:
			t.Fatal("children did not finish within 3 minutes")
		}
		r.step(ctx)
	}
	r.step(ctx)
	want := 0
	for c := range children {
		want += childEvents(c)
	}
	if len(r.seen) != want {
		t.Fatalf("tailing reader saw %d events, want %d", len(r.seen), want)
	}
	checkPerAggregate(t, r.order)
}
