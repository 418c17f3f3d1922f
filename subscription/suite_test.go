package subscription

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/oklog/ulid/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// newExecFunc opens a fresh, empty executor owned by t (closed on cleanup).
type newExecFunc func(t testing.TB) evento.Executor

const aggType = "test/Account"

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// writer appends events with contiguous versions per aggregate.
type writer struct {
	mu   sync.Mutex
	exec evento.Executor
	ver  map[string]uint64
}

func newWriter(exec evento.Executor) *writer {
	return &writer{exec: exec, ver: map[string]uint64{}}
}

// write appends one event per id (in order) in one batch, with the given
// routing key and name, and returns the committed events.
func (w *writer) write(t testing.TB, typ, name, routing string, ids ...string) []evento.Event {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := make([]evento.Event, len(ids))
	next := map[string]uint64{}
	for i, id := range ids {
		v, ok := next[id]
		if !ok {
			v = w.ver[typ+"\x00"+id]
		}
		v++
		next[id] = v
		evs[i] = evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: name, RoutingKey: routing, Data: []byte{0x80}}
	}
	if err := w.exec.Write(context.Background(), evs); err != nil {
		t.Errorf("write: %v", err)
		return nil
	}
	for id, v := range next {
		w.ver[typ+"\x00"+id] = v
	}
	return evs
}

// writeN appends n single-event batches over aggregates ids round-robin.
func (w *writer) writeN(t testing.TB, n int, ids ...string) []evento.Event {
	t.Helper()
	var out []evento.Event
	for i := range n {
		out = append(out, w.write(t, aggType, "Deposited", "", ids[i%len(ids)])...)
	}
	return out
}

// recorder records handler deliveries.
type recorder struct {
	mu        sync.Mutex
	changed   chan struct{}
	delivered []evento.Event
	parts     []uint32
	seen      map[ulid.ULID]int
	inFlight  atomic.Int32
	overlap   atomic.Bool
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1), seen: map[ulid.ULID]int{}}
}

func (r *recorder) record(ctx context.Context, e *evento.Event) {
	info, _ := InfoFrom(ctx)
	r.mu.Lock()
	r.delivered = append(r.delivered, *e)
	r.parts = append(r.parts, info.Partition)
	r.seen[e.ID]++
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// handler records every event, and flags two concurrent calls.
func (r *recorder) handler(ctx context.Context, e *evento.Event) error {
	if r.inFlight.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.inFlight.Add(-1)
	r.record(ctx, e)
	return nil
}

func (r *recorder) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.delivered)
}

func (r *recorder) snapshot() ([]evento.Event, map[ulid.ULID]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[ulid.ULID]int, len(r.seen))
	for k, v := range r.seen {
		seen[k] = v
	}
	return append([]evento.Event(nil), r.delivered...), seen
}

// waitUnique waits until n distinct events were delivered.
func (r *recorder) waitUnique(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for r.unique() < n {
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %d distinct deliveries; have %d", within, n, r.unique())
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition, not synchronising
	}
}

func recv[T any](t testing.TB, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
	var zero T
	return zero
}

func stop(t testing.TB, w *Worker) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return w.Stop(ctx)
}

// allEvents reads the whole log in order.
func allEvents(t testing.TB, exec evento.Executor, q evento.Query) []evento.Event {
	t.Helper()
	var out []evento.Event
	after := ""
	for {
		q.Args = cursor.Forward(cursor.MaxPageSize, after)
		p, err := exec.Read(context.Background(), q)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, p.Events...)
		if !p.PageInfo.HasNextPage || len(p.Events) == 0 {
			return out
		}
		after = p.Events[len(p.Events)-1].Cursor()
	}
}

func ids(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// checkOrder verifies got holds exactly want's events once each, in want's
// order.
func checkExactlyOnceInOrder(t testing.TB, got, want []evento.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("delivered %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("delivery %d is %s (%s v%d), want %s (%s v%d)", i, got[i].ID, got[i].AggregateID, got[i].Version, want[i].ID, want[i].AggregateID, want[i].Version)
		}
	}
}

// runSuite runs every behaviour test against one backend.
func runSuite(t *testing.T, newExec newExecFunc) {
	tests := []struct {
		name string
		f    func(t *testing.T, newExec newExecFunc)
	}{
		{"CatchUpThenTail", testCatchUpThenTail},
		{"GracefulStopMidChunk", testGracefulStopMidChunk},
		{"CrashMidChunkTakeover", testCrashMidChunkTakeover},
		{"TwoWorkersExclusive", testTwoWorkersExclusive},
		{"StaleAckRejected", testStaleAckRejected},
		{"Partitions", testPartitions},
		{"FairShare", testFairShare},
		{"RetryThenPark", testRetryThenPark},
		{"RetryThenStop", testRetryThenStop},
		{"StopDuringBackoff", testStopDuringBackoff},
		{"SafetyCheckAndSkip", testSafetyCheckAndSkip},
		{"Routing", testRouting},
		{"PanicRecovered", testPanicRecovered},
		{"ContextValues", testContextValues},
		{"SelectionChanged", testSelectionChanged},
		{"NoHandlerOutsideLease", testNoHandlerOutsideLease},
		{"SpreadByDefault", testSpreadByDefault},
		{"StatusLag", testStatusLag},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newExec) })
	}
}

func testCatchUpThenTail(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.writeN(t, 200, ids(10, "pre")...)
	rec := newRecorder()
	// No polling: tailing must be driven by Notify.
	sub := New("tail").HandleAll(aggType, rec.handler).ChunkSize(50).PollInterval(time.Hour).Logger(quiet)
	wk, err := sub.Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() { w.writeN(t, 100, ids(5, fmt.Sprintf("w%d-", g))...) })
	}
	wg.Wait()
	rec.waitUnique(t, 600, 30*time.Second)
	if err := stop(t, wk); err != nil {
		t.Fatalf("stop: %v", err)
	}
	got, _ := rec.snapshot()
	want := allEvents(t, exec, evento.ByType(aggType))
	checkExactlyOnceInOrder(t, got, want)
	if rec.overlap.Load() {
		t.Error("handler ran concurrently with itself")
	}
	st, err := exec.Subscriber(context.Background(), "tail", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != want[len(want)-1].Cursor() || st.Lag.Events != 0 {
		t.Errorf("stored cursor is not the last event's, or lag %d is not 0", st.Lag.Events)
	}
	if st.Holder != "" && st.LeaseExpiresAt.After(time.Now()) {
		t.Errorf("lease still held by %q after Stop", st.Holder)
	}
	all, err := Status(context.Background(), exec, "tail")
	if err != nil || len(all) != 1 || all[0].Key != "tail" {
		t.Errorf("Status = %+v, %v; want the one subscriber", all, err)
	}
}

func testGracefulStopMidChunk(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	want := w.writeN(t, 300, ids(7, "a")...)
	rec := newRecorder()
	reached, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	h := func(ctx context.Context, e *evento.Event) error {
		rec.record(ctx, e)
		if n.Add(1) == 150 {
			close(reached)
			<-release
		}
		return nil
	}
	sub := New("graceful").HandleAll(aggType, h).ChunkSize(100).Logger(quiet)
	wk, err := sub.Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, reached, 30*time.Second, "event 150")
	stopped := make(chan error, 1)
	go func() { stopped <- stop(t, wk) }()
	recv(t, wk.quit, 10*time.Second, "stop requested")
	close(release)
	if err := recv(t, stopped, 30*time.Second, "Stop"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c := rec.count(); c != 150 {
		t.Fatalf("handled %d events before stopping, want 150 (stop finishes only the in-flight event)", c)
	}
	st, err := exec.Subscriber(context.Background(), "graceful", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != want[149].Cursor() {
		t.Fatalf("cursor after graceful stop is not at event 150")
	}
	if want[0].Position.Tx == 0 && st.Lag.Events != 150 {
		t.Errorf("lag = %d events, want 150", st.Lag.Events)
	}
	if st.Lag.Time <= 0 {
		t.Errorf("lag time = %v, want the age of event 150", st.Lag.Time)
	}
	// A second worker continues with no redelivery.
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	got, _ := rec.snapshot()
	checkExactlyOnceInOrder(t, got, want)
}

func testCrashMidChunkTakeover(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	want := w.writeN(t, 300, ids(7, "a")...)
	// Effects are idempotent: a set keyed by event id.
	rec := newRecorder()
	reached := make(chan struct{})
	var n atomic.Int32
	crashing := func(ctx context.Context, e *evento.Event) error {
		rec.record(ctx, e)
		if n.Add(1) == 150 {
			close(reached)
			<-ctx.Done() // the process "dies" in the middle of this handler
			return ctx.Err()
		}
		return nil
	}
	const ttl = 600 * time.Millisecond
	a, err := New("crash").HandleAll(aggType, crashing).ChunkSize(100).MaxChunkSize(200).Lease(ttl, 0).WorkerID("A").Logger(quiet).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, reached, 30*time.Second, "event 150")
	a.crash()
	st, err := exec.Subscriber(context.Background(), "crash", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Holder != "A" {
		t.Fatalf("crashed worker's lease holder = %q, want it left to expire", st.Holder)
	}
	gained := make(chan evento.Lease, 1)
	b, err := New("crash").HandleAll(aggType, rec.handler).ChunkSize(100).Lease(ttl, 0).WorkerID("B").Logger(quiet).
		Signals(&Signals{LeaseGained: func(l evento.Lease) { gained <- l }}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	l := recv(t, gained, 10*ttl, "takeover by B")
	if l.Token <= st.Token {
		t.Errorf("takeover token %d not above the crashed holder's %d", l.Token, st.Token)
	}
	rec.waitUnique(t, 300, 30*time.Second)
	if err := stop(t, b); err != nil {
		t.Fatal(err)
	}
	_, seen := rec.snapshot()
	redelivered := 0
	for _, e := range want {
		if seen[e.ID] == 0 {
			t.Fatalf("event %s never handled", e.ID)
		}
		redelivered += seen[e.ID] - 1
	}
	// Per-chunk acks: at most the unacknowledged events again, no more
	// than MaxChunkSize (an acknowledgement written in the background may
	// not have reached the store).
	if redelivered < 1 || redelivered > 200 {
		t.Errorf("redelivered %d events after the crash, want 1..200 (at most MaxChunkSize)", redelivered)
	}
}

func testTwoWorkersExclusive(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.writeN(t, 100, ids(5, "a")...)
	rec := newRecorder()
	var byWorker sync.Map
	h := func(ctx context.Context, e *evento.Event) error {
		info, _ := InfoFrom(ctx)
		c, _ := byWorker.LoadOrStore(info.WorkerID, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		return rec.handler(ctx, e)
	}
	gainedA, gainedB := make(chan evento.Lease, 4), make(chan evento.Lease, 4)
	mk := func(id string, ch chan evento.Lease) *Subscription {
		return New("excl").HandleAll(aggType, h).ChunkSize(10).Lease(3*time.Second, 0).WorkerID(id).Logger(quiet).
			Signals(&Signals{LeaseGained: func(l evento.Lease) { ch <- l }})
	}
	a, err := mk("A", gainedA).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, gainedA, 10*time.Second, "A's lease")
	b, err := mk("B", gainedB).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	rec.waitUnique(t, 100, 30*time.Second)
	if c, ok := byWorker.Load("B"); ok && c.(*atomic.Int32).Load() > 0 {
		t.Fatal("B processed events while A held the lease")
	}
	select {
	case <-gainedB:
		t.Fatal("B gained the lease while A held it")
	default:
	}
	if err := stop(t, a); err != nil {
		t.Fatal(err)
	}
	recv(t, gainedB, 10*time.Second, "B taking over after A stopped")
	w.writeN(t, 50, ids(5, "a")...)
	rec.waitUnique(t, 150, 30*time.Second)
	if err := stop(t, b); err != nil {
		t.Fatal(err)
	}
	got, _ := rec.snapshot()
	checkExactlyOnceInOrder(t, got, allEvents(t, exec, evento.ByType(aggType)))
	if rec.overlap.Load() {
		t.Error("two workers processed at the same time")
	}
	if c, _ := byWorker.Load("B"); c == nil || c.(*atomic.Int32).Load() != 50 {
		t.Errorf("B handled %v events, want the 50 written after the takeover", c)
	}
}

func testStaleAckRejected(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	evs := w.writeN(t, 10, "a")
	rec := newRecorder()
	blockedFirst, releaseFirst := make(chan struct{}), make(chan struct{})
	blockedAgain, releaseAgain := make(chan struct{}), make(chan struct{})
	var calls sync.Map
	h := func(ctx context.Context, e *evento.Event) error {
		c, _ := calls.LoadOrStore(e.ID, new(atomic.Int32))
		k := c.(*atomic.Int32).Add(1)
		rec.record(ctx, e)
		switch {
		case e.ID == evs[4].ID && k == 1:
			close(blockedFirst)
			<-releaseFirst
		case e.ID == evs[2].ID && k == 2:
			close(blockedAgain)
			<-releaseAgain
		}
		return nil
	}
	lost := make(chan error, 1)
	wk, err := New("stale").HandleAll(aggType, h).AckMode(AckPerEvent).Lease(5*time.Second, 0).Logger(quiet).
		Signals(&Signals{LeaseLost: func(_ string, _ uint32, err error) { lost <- err }}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, blockedFirst, 30*time.Second, "event 5")
	// An operator resets the cursor to event 2: the worker's token is stale.
	if err := exec.ResetSubscriber(context.Background(), "stale", 0, evs[1].Cursor()); err != nil {
		t.Fatal(err)
	}
	close(releaseFirst)
	if err := recv(t, lost, 10*time.Second, "lease lost"); !errors.Is(err, evento.ErrLeaseLost) {
		t.Fatalf("lease lost error = %v, want ErrLeaseLost", err)
	}
	recv(t, blockedAgain, 30*time.Second, "redelivery of event 3")
	st, err := exec.Subscriber(context.Background(), "stale", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[1].Cursor() {
		t.Fatalf("the stale acknowledgement moved the cursor")
	}
	close(releaseAgain)
	rec.waitUnique(t, 10, 30*time.Second)
	waitFor(t, 10*time.Second, "cursor at the last event", func() bool {
		st, err := exec.Subscriber(context.Background(), "stale", 0)
		return err == nil && st.Cursor == evs[9].Cursor()
	})
	if err := stop(t, wk); err != nil {
		t.Fatal(err)
	}
	_, seen := rec.snapshot()
	for i, e := range evs {
		wantN := 1
		if i >= 2 && i <= 4 {
			wantN = 2
		}
		if seen[e.ID] != wantN {
			t.Errorf("event %d delivered %d times, want %d", i+1, seen[e.ID], wantN)
		}
	}
}

func testPartitions(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	aggs := ids(20, "p")
	w.writeN(t, 100, aggs...)
	rec := newRecorder()
	var mu sync.Mutex
	workersOf := map[string]map[string]bool{}
	h := func(ctx context.Context, e *evento.Event) error {
		info, _ := InfoFrom(ctx)
		mu.Lock()
		if workersOf[info.WorkerID] == nil {
			workersOf[info.WorkerID] = map[string]bool{}
		}
		workersOf[info.WorkerID][e.AggregateID] = true
		mu.Unlock()
		rec.record(ctx, e)
		return nil
	}
	hold := newHoldings()
	mk := func(id string) *Worker {
		wk, err := New("parts").HandleAll(aggType, h).Partitions(4).MaxClaims(2).ChunkSize(17).
			Lease(3*time.Second, 0).WorkerID(id).Logger(quiet).
			Signals(hold.signals(id, nil)).Start(context.Background(), exec)
		if err != nil {
			t.Fatal(err)
		}
		return wk
	}
	a := mk("A")
	// Alone, A owns all four but MaxClaims holds it to two.
	hold.wait(t, 10*time.Second, "A's two leases", func(by map[uint32]string) bool { return len(by) == 2 })
	b := mk("B")
	hold.settle(t, Owners(4, []string{"A", "B"}), 10*time.Second, "A and B")
	c := mk("C") // the spread gives each one partition at least
	hold.settle(t, Owners(4, []string{"A", "B", "C"}), 10*time.Second, "A, B and C")
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() { w.writeN(t, 100, aggs[g*5:g*5+5]...) })
	}
	wg.Wait()
	rec.waitUnique(t, 400, 30*time.Second)
	if err := stop(t, a); err != nil {
		t.Fatal(err)
	}
	hold.settle(t, Owners(4, []string{"B", "C"}), 10*time.Second, "B and C after A stopped")
	w.writeN(t, 100, aggs...)
	rec.waitUnique(t, 500, 30*time.Second)
	for _, wk := range []*Worker{b, c} {
		if err := stop(t, wk); err != nil {
			t.Fatal(err)
		}
	}
	got, seen := rec.snapshot()
	want := allEvents(t, exec, evento.ByType(aggType))
	if len(got) != len(want) || len(seen) != len(want) {
		t.Fatalf("delivered %d (%d distinct), want %d exactly once", len(got), len(seen), len(want))
	}
	next := map[string]uint64{}
	rec.mu.Lock()
	parts := append([]uint32(nil), rec.parts...)
	rec.mu.Unlock()
	for i, e := range got {
		if e.Version != next[e.AggregateID]+1 {
			t.Fatalf("aggregate %s: got version %d after %d", e.AggregateID, e.Version, next[e.AggregateID])
		}
		next[e.AggregateID] = e.Version
		if p := PartitionOf(e.AggregateID, 4); parts[i] != p {
			t.Fatalf("aggregate %s handled on partition %d, want %d", e.AggregateID, parts[i], p)
		}
	}
	for _, id := range []string{"A", "B", "C"} {
		if len(workersOf[id]) == 0 {
			t.Errorf("worker %s handled nothing", id)
		}
	}
}

var errBoom = errors.New("boom")

func testRetryThenPark(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	evs := w.writeN(t, 20, ids(3, "a")...)
	bad := evs[7].ID
	rec := newRecorder()
	var attempts atomic.Int32
	var fixed atomic.Bool
	h := func(ctx context.Context, e *evento.Event) error {
		if e.ID == bad && !fixed.Load() {
			attempts.Add(1)
			return errBoom
		}
		rec.record(ctx, e)
		return nil
	}
	var parkedSig atomic.Int32
	sub := New("park").HandleAll(aggType, h).Retry(RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 3}).
		OnExhausted(ParkEvent).Logger(quiet).Signals(&Signals{Parked: func(string, uint32, ulid.ULID, error) { parkedSig.Add(1) }})
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	if attempts.Load() != 3 || parkedSig.Load() != 1 {
		t.Fatalf("attempts = %d, parked signals = %d; want 3 and 1", attempts.Load(), parkedSig.Load())
	}
	if rec.unique() != 19 {
		t.Fatalf("handled %d events, want the other 19", rec.unique())
	}
	parked, err := exec.ParkedEvents(context.Background(), "park")
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Event.ID != bad || parked[0].Attempts != 3 || !strings.Contains(parked[0].Error, "boom") {
		t.Fatalf("parked = %+v, want the bad event after 3 attempts", parked)
	}
	st, err := exec.Subscriber(context.Background(), "park", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[19].Cursor() || st.Parked != 1 {
		t.Fatalf("subscriber = %+v, want cursor at the end and 1 parked", st)
	}
	// Replay while still failing: stays parked.
	if n, err := sub.Replay(context.Background(), exec); n != 0 || !errors.Is(err, errBoom) {
		t.Fatalf("replay of a failing event = %d, %v; want 0 and the handler error", n, err)
	}
	fixed.Store(true)
	if n, err := sub.Replay(context.Background(), exec); n != 1 || err != nil {
		t.Fatalf("replay = %d, %v; want 1, nil", n, err)
	}
	if parked, err := exec.ParkedEvents(context.Background(), "park"); err != nil || len(parked) != 0 {
		t.Fatalf("parked after replay = %v, %v; want none", parked, err)
	}
	if rec.unique() != 20 {
		t.Fatalf("handled %d events after replay, want 20", rec.unique())
	}
}

func testRetryThenStop(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	evs := w.writeN(t, 20, ids(3, "a")...)
	bad := evs[7].ID
	rec := newRecorder()
	h := func(ctx context.Context, e *evento.Event) error {
		if e.ID == bad {
			return errBoom
		}
		rec.record(ctx, e)
		return nil
	}
	stopped := make(chan error, 1)
	wk, err := New("stop").HandleAll(aggType, h).Retry(RetryPolicy{Initial: time.Millisecond, MaxAttempts: 2}).Logger(quiet).
		Signals(&Signals{Stopped: func(err error) { stopped <- err }}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, wk.Done(), 30*time.Second, "the worker stopping by itself")
	for _, err := range []error{wk.Err(), stop(t, wk), recv(t, stopped, time.Second, "Stopped signal")} {
		if !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, errBoom) {
			t.Fatalf("error = %v, want ErrRetriesExhausted wrapping the handler error", err)
		}
	}
	st, err := exec.Subscriber(context.Background(), "stop", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[6].Cursor() || !strings.Contains(st.LastError, "boom") {
		t.Fatalf("subscriber = %+v; want the cursor before the failing event and its error", st)
	}
	if st.Holder != "" && st.LeaseExpiresAt.After(time.Now()) {
		t.Errorf("lease still held after the worker stopped")
	}
	if rec.unique() != 7 {
		t.Fatalf("handled %d events, want the 7 before the failing one", rec.unique())
	}
}

func testStopDuringBackoff(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	evs := w.writeN(t, 5, "a")
	retrying := make(chan int, 1)
	h := func(ctx context.Context, e *evento.Event) error {
		if e.ID == evs[2].ID {
			return errBoom
		}
		return nil
	}
	wk, err := New("backoff").HandleAll(aggType, h).Retry(RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxAttempts: 10}).Logger(quiet).
		Signals(&Signals{Retrying: func(_ string, _ uint32, _ ulid.ULID, attempt int, _ time.Duration, _ error) { retrying <- attempt }}).
		Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, retrying, 30*time.Second, "the first retry")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wk.Stop(ctx); err != nil {
		t.Fatalf("stop during a one-hour backoff: %v", err)
	}
	st, err := exec.Subscriber(context.Background(), "backoff", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[1].Cursor() || !strings.Contains(st.LastError, "boom") {
		t.Fatalf("subscriber = %+v; want the cursor before the failing event and its error", st)
	}
}

func testSafetyCheckAndSkip(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.write(t, aggType, "Opened", "", "a")
	w.write(t, aggType, "Renamed", "", "a")
	w.write(t, aggType, "Opened", "", "b")
	w.write(t, "test/Other", "Noise", "", "x")
	rec := newRecorder()
	ok := func(ctx context.Context, e *evento.Event) error { rec.record(ctx, e); return nil }

	// Without the safety check an event with no handler is acknowledged.
	if err := New("lax").Handle(aggType, "Opened", ok).Logger(quiet).CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	if rec.unique() != 2 {
		t.Fatalf("lax: handled %d, want 2", rec.unique())
	}
	// With it, the worker stops at the unhandled event.
	err := New("strict").Handle(aggType, "Opened", ok).SafetyCheck(true).Logger(quiet).CatchUp(context.Background(), exec)
	if !errors.Is(err, ErrNoHandler) {
		t.Fatalf("strict: %v, want ErrNoHandler", err)
	}
	st, err := exec.Subscriber(context.Background(), "strict", 0)
	if err != nil {
		t.Fatal(err)
	}
	all := allEvents(t, exec, evento.All())
	if st.Cursor != all[0].Cursor() || !strings.Contains(st.LastError, "no handler") {
		t.Fatalf("strict: subscriber = %+v; want cursor at the first event and the error", st)
	}
	// Skip-listing it satisfies the safety check, and reads other types.
	skipped := New("skip").Handle(aggType, "Opened", ok).Skip(aggType, "Renamed").Skip("test/Other").SafetyCheck(true).Logger(quiet)
	if err := skipped.CatchUp(context.Background(), exec); err != nil {
		t.Fatalf("skip: %v", err)
	}
	if st, err := exec.Subscriber(context.Background(), "skip", 0); err != nil || st.Cursor != all[3].Cursor() {
		t.Fatalf("skip: subscriber = %+v, %v; want the cursor on the last (skipped) event", st, err)
	}
	if q := skipped.mustPlan(t).query; len(q.Filters) != 2 {
		t.Errorf("query filters = %+v; want one per aggregate type", q.Filters)
	}
}

func (s *Subscription) mustPlan(t testing.TB) *plan {
	t.Helper()
	p, err := s.plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testRouting(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.write(t, aggType, "E", "eu", "a")
	w.write(t, aggType, "E", "", "b")
	w.write(t, aggType, "E", "us", "c")
	w.write(t, aggType, "E", "eu", "d")
	w.write(t, aggType, "E", "", "e")
	for _, tc := range []struct {
		key  string
		r    evento.Routing
		want string
	}{
		{"any", evento.AnyRouting(), "abcde"},
		{"eu", evento.RoutingKey("eu"), "ad"},
		{"none", evento.NoRoutingKey(), "be"},
	} {
		rec := newRecorder()
		if err := New(tc.key).HandleAll(aggType, rec.handler).Routing(tc.r).Logger(quiet).CatchUp(context.Background(), exec); err != nil {
			t.Fatal(err)
		}
		got, _ := rec.snapshot()
		var s strings.Builder
		for _, e := range got {
			s.WriteString(e.AggregateID)
		}
		if s.String() != tc.want {
			t.Errorf("routing %v: handled %q, want %q", tc.r, s.String(), tc.want)
		}
	}
}

func testPanicRecovered(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	evs := w.writeN(t, 5, "a")
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	rec := newRecorder()
	var panicked atomic.Bool
	h := func(ctx context.Context, e *evento.Event) error {
		if e.ID == evs[3].ID && panicked.CompareAndSwap(false, true) {
			var m map[string]int
			m["nil map"]++ // a real runtime panic
		}
		rec.record(ctx, e)
		return nil
	}
	if err := New("panic").HandleAll(aggType, h).Retry(RetryPolicy{Initial: time.Millisecond}).Logger(logger).CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	if rec.unique() != 5 || !panicked.Load() {
		t.Fatalf("handled %d events (panicked %v), want all 5 after a recovered panic", rec.unique(), panicked.Load())
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "goroutine ") || !strings.Contains(out, evs[3].ID.String()) {
		t.Errorf("log lacks the panic, its stack or the event id:\n%s", out)
	}
	// Under StopWorker with one attempt, the panic is the returned error.
	err := New("panic2").HandleAll(aggType, func(context.Context, *evento.Event) error { panic("always") }).
		Retry(RetryPolicy{MaxAttempts: 1}).Logger(quiet).CatchUp(context.Background(), exec)
	if !errors.Is(err, ErrHandlerPanic) {
		t.Fatalf("panicking handler: %v, want ErrHandlerPanic", err)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type projection struct{ name string }

type namer interface{ Name() string }

func (p *projection) Name() string { return p.name }

func testContextValues(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	w := newWriter(exec)
	w.writeN(t, 1, "a")
	var got string
	var gotExec evento.Executor
	var gotNamer bool
	h := func(ctx context.Context, e *evento.Event) error {
		p, ok := Value[*projection](ctx)
		if !ok {
			return errors.New("no *projection in context")
		}
		_, gotNamer = Value[namer](ctx)
		got, gotExec = p.name, Executor(ctx)
		return nil
	}
	set := HandlerSet{AggregateType: aggType, Handlers: map[string]HandlerFunc{"Deposited": h}}
	if err := New("values").HandleSet(set).Data(&projection{name: "balances"}).Data(42).Logger(quiet).CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	if got != "balances" || gotExec != exec || !gotNamer {
		t.Fatalf("handler saw value %q, executor %v, namer %v", got, gotExec, gotNamer)
	}
	if _, ok := Value[int](context.Background()); ok {
		t.Error("Value found something outside a handler")
	}
}

// testFairShare: 5 partitions. A starts alone and holds all five; B joins
// and the spread settles at 3 and 2, as Owners says, each partition
// handed over once.
func testFairShare(t *testing.T, newExec newExecFunc) {
	exec := newExec(t)
	newWriter(exec).writeN(t, 40, ids(8, "f")...)
	rec := newRecorder()
	hold := newHoldings()
	mk := func(id string) *Worker {
		wk, err := New("fair").HandleAll(aggType, rec.handler).Partitions(5).
			Lease(2*time.Second, 0).WorkerID(id).Logger(quiet).Signals(hold.signals(id, nil)).Start(context.Background(), exec)
		if err != nil {
			t.Fatal(err)
		}
		return wk
	}
	a := mk("A")
	hold.settle(t, Owners(5, []string{"A"}), 10*time.Second, "A alone")
	b := mk("B")
	want := Owners(5, []string{"A", "B"})
	took := hold.settle(t, want, 10*time.Second, "A and B")
	if got := hold.heldCounts(); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("A and B hold %v partitions, want 3 and 2", got)
	}
	if _, gains, lost := hold.snapshot(); gains != 5+moved(Owners(5, []string{"A"}), want)+lost {
		t.Errorf("%d leases gained (%d lost), want 5 then %d for B", gains, lost, moved(Owners(5, []string{"A"}), want))
	}
	rec.waitUnique(t, 40, 30*time.Second)
	subs, err := Status(context.Background(), exec, "fair")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.Holder != want[s.Partition] {
			t.Errorf("partition %d held by %q, want %q", s.Partition, s.Holder, want[s.Partition])
		}
	}
	for _, wk := range []*Worker{a, b} {
		if err := stop(t, wk); err != nil {
			t.Fatal(err)
		}
	}
	if _, seen := rec.snapshot(); len(seen) != 40 {
		t.Errorf("handled %d distinct events, want 40", len(seen))
	}
	t.Logf("lease TTL 2s: B had its share (2 of 5) %v after joining", took.Round(time.Millisecond))
}
