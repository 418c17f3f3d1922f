// Package executortest is the conformance suite every evento backend runs.
//
// A backend's test calls Run with a Harness that opens fresh stores:
//
//	func TestConformance(t *testing.T) {
//		executortest.Run(t, executortest.Harness{
//			NewStore: func(t *testing.T) executortest.OpenFunc {
//				dir := t.TempDir()
//				return func(ctx context.Context) (evento.Executor, error) {
//					return pebble.Open(ctx, dir)
//				}
//			},
//		})
//	}
//
// The suite is split by area (RunEvents, RunSubscribers, RunSnapshots,
// RunNotify) so a backend can run one area while it is being built, but a
// backend is only conformant when Run passes whole. Backend differences are
// read from evento.Capabilities, never discovered by skipping:
//
//   - StoreClock widens the tolerance on store-assigned times (event
//     timestamps, lease expiries, snapshot CreatedAt) to a few seconds;
//     without it the suite expects them to come from this process's wall
//     clock, so a harness must not inject a fake clock.
//   - MultiProcess makes the suite open a second executor over the same
//     store while the first is open (OpenFunc is called twice): commits,
//     versions and leases must be shared, and the tailing-reader test runs
//     its writers over both.
//   - CrossProcessNotify makes the second executor's Notify channel wait
//     for the first executor's commits.
//
// # Conventions
//
// Every named subtest opens its own store with Harness.NewStore and runs
// with t.Parallel, so a store must not share state with another one. The
// expected results of reads come from a model: the committed events
// filtered with evento.Query.Matches. Asynchronous effects are awaited by
// polling or selecting with a bounded deadline, never by sleeping. Failure
// messages say what was called, what came back and what was expected, with
// events printed as type/id, version, name, routing key, position and ID,
// and cursors decoded to their position.
//
// # Stress test
//
// Events/Stress (RunStress runs it alone) proves the global-order promise under
// load: writer goroutines of this process (over two executors when the
// backend is MultiProcess) and, for a MultiProcess backend whose Harness
// has a DSN, child processes of the test binary commit batches of 1 to 3
// events over three aggregate types, three names and routing keys "k1",
// "k2" and none (each aggregate keeps one key), some spanning two
// aggregates, every fifth racing on shared "hot" aggregates with retries
// on version conflicts. Meanwhile one tailing reader per query shape (all,
// type, type+id, type+name, two ORs of several filters) and routing (any,
// no key, "k1") pages forward from its last EndCursor with pages of 7 to
// 50 events, and point readers race ReadAggregate and AggregateVersion
// against the writers. Each reader must end with exactly the acknowledged
// events its query matches (Query.Matches over what Write returned and
// the children reported), in strictly increasing positions; a failure
// names the shape, how many events it missed, the first missing events and
// the page that jumped over them. Every event a point read returns must be
// at or below Head and its cursor must be accepted by Read. Positions must
// agree with the order of non-overlapping Writes, and every aggregate's
// versions must be contiguous.
//
// Sizes (writers × commits in this process; child processes × writers ×
// commits):
//
//   - default (CI): 32 × 60; 2 × 4 × 40, about 4,700 events.
//
//   - go test -short: 32 × 15; 2 × 2 × 15. Under -race: 32 × 20; 2 × 2 × 20.
//
//   - EVENTO_STRESS=long: 64 × 600; 6 × 8 × 300, about 100,000 events:
//
//     EVENTO_STRESS=long go test ./executor/... -run 'Conformance/Events/Stress' -timeout 60m
//
//   - EVENTO_STRESS=N multiplies the commits of the default (or -short)
//     size by N.
//
// Child processes: the test binary re-executes itself (os.Args[0]
// -test.run=^$) with EVENTO_EXECUTORTEST_CHILD and the DSN in its
// environment; the backend's TestMain calls ChildMain when IsChild is
// true. A child prints "ready", waits for "go" on stdin, and prints one
// line per acknowledged event.
//
// Events/Routing checks the routing-key rule: an aggregate's key is fixed
// by its first event, later events inherit it, and a different key is
// refused (*evento.RoutingKeyError) with nothing of the batch written.
//
// Benchmark runs the shared workloads (appends, batches, concurrent
// writers, replay, log walks) for a backend and reports events/s.
package executortest

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
)

// OpenFunc opens an executor over one storage location. Calling it again
// after the executor was closed reopens the same data.
type OpenFunc func(ctx context.Context) (evento.Executor, error)

// Harness tells the suite how to make stores for a backend.
type Harness struct {
	// NewStore returns an OpenFunc over a fresh, empty storage location
	// (a directory, a file, a PostgreSQL schema) owned by t. It registers
	// the location's cleanup with t.Cleanup. The suite closes every
	// executor it opens.
	NewStore func(t *testing.T) OpenFunc

	// DSN, if set, returns a DSN naming a fresh, empty store owned by t
	// (cleaned up with t.Cleanup) that executor.Open opens in this process
	// and in child processes of the test binary. The stress test then
	// opens its executors with it and, for a MultiProcess backend, starts
	// child processes writing to the same store: the backend's TestMain
	// must call ChildMain when IsChild reports true. Without DSN the stress
	// test writes from this process only.
	DSN func(t *testing.T) string

	// ReaderDSN, if set with DSN, returns the DSN the stress test's
	// readers open, given the DSN its writers opened (after they created
	// the store): the same store seen by, for example, another database
	// role that may only read.
	ReaderDSN func(t *testing.T, dsn string) string
}

// Run runs the whole conformance suite: RunEvents, RunSubscribers,
// RunSnapshots and RunNotify, each as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Events", func(t *testing.T) { RunEvents(t, h) })
	t.Run("Subscribers", func(t *testing.T) { RunSubscribers(t, h) })
	t.Run("Snapshots", func(t *testing.T) { RunSnapshots(t, h) })
	t.Run("Notify", func(t *testing.T) { RunNotify(t, h) })
}

// openStore opens an executor over a fresh storage location and closes it
// when the test ends. It returns the OpenFunc too, for reopen tests.
func openStore(t *testing.T, h Harness) (evento.Executor, OpenFunc) {
	t.Helper()
	if h.NewStore == nil {
		t.Fatal("executortest: Harness.NewStore is nil")
	}
	open := h.NewStore(t)
	if open == nil {
		t.Fatal("executortest: Harness.NewStore returned a nil OpenFunc")
	}
	return reopen(t, open), open
}

// reopen opens an executor with open and registers its Close with
// t.Cleanup. A test may close it earlier: Close is idempotent, so the
// cleanup's second Close must return nil too.
func reopen(t *testing.T, open OpenFunc) evento.Executor {
	t.Helper()
	x, err := open(context.Background())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if x == nil {
		t.Fatal("open store: OpenFunc returned a nil executor and no error")
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Errorf("Close at test cleanup (possibly the second Close; Close must be idempotent): %v", err)
		}
	})
	return x
}

// parallel runs test(t, h) as a parallel subtest named name.
func parallel(t *testing.T, h Harness, name string, test func(*testing.T, Harness)) {
	t.Helper()
	t.Run(name, func(t *testing.T) { t.Parallel(); test(t, h) })
}
